//! `get`, `ls`, `rm`, `stat`, `url`.

use std::path::PathBuf;

use locker_client::Client;
use locker_core::api::{FileInfo, FileList};
use locker_core::Location;
use serde::Serialize;

use super::file_ref;
use crate::out::{time, Out};
use crate::Fail;

pub(crate) async fn get(
    client: &Client,
    file: &str,
    dest: Option<PathBuf>,
    out: &Out,
) -> Result<(), Fail> {
    let r = file_ref(file)?;
    if dest.as_deref().is_some_and(|d| d.as_os_str() == "-") {
        let mut stdout = tokio::io::stdout();
        client.download_to(&r, &mut stdout).await?;
        return Ok(());
    }
    let name = r.path.file_name();
    let target = match dest {
        Some(d) if d.is_dir() => d.join(name),
        Some(d) => d,
        None => PathBuf::from(name),
    };
    let done = client.download_file(&r, &target).await?;
    if out.json {
        out.json(&done.info);
    } else {
        println!("{r} -> {} ({} bytes)", target.display(), done.bytes);
    }
    Ok(())
}

pub(crate) async fn ls(client: &Client, location: &str, long: bool, out: &Out) -> Result<(), Fail> {
    let at = Location::parse(location).map_err(|e| Fail::Usage(format!("{location}: {e}")))?;
    let files = client.list_all(at.namespace(), at.list_prefix()).await?;
    if out.json {
        out.json(&FileList {
            files,
            cursor: None,
        });
        return Ok(());
    }
    for f in &files {
        if long {
            println!(
                "{:>12}  {}  {}  {}",
                f.size,
                time(f.updated_at),
                f.sha256.get(..12).unwrap_or(&f.sha256),
                f.locker_ref
            );
        } else {
            println!("{}", f.locker_ref);
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Removed {
    #[serde(rename = "ref")]
    locker_ref: String,
    deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<locker_core::api::ErrorDetail>,
}

pub(crate) async fn rm(client: &Client, files: &[String], out: &Out) -> Result<(), Fail> {
    // Every argument is checked before the first deletion.
    let refs = files
        .iter()
        .map(|f| file_ref(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut results = Vec::new();
    for r in refs {
        match client.delete(&r).await {
            Ok(d) => {
                if !out.json {
                    println!("deleted {}", d.locker_ref);
                }
                results.push(Removed {
                    locker_ref: d.locker_ref,
                    deleted: d.deleted,
                    error: None,
                });
            }
            Err(e) => {
                eprintln!("failed {r}: {e}");
                results.push(Removed {
                    locker_ref: r.to_string(),
                    deleted: false,
                    error: Some(locker_core::api::ErrorDetail {
                        code: e.code().to_owned(),
                        message: e.message(),
                    }),
                });
            }
        }
    }
    if out.json {
        out.json(&results);
    }
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    match failed {
        0 => Ok(()),
        n => Err(Fail::Partial(format!(
            "{n} of {} deletions failed",
            results.len()
        ))),
    }
}

pub(crate) async fn stat(client: &Client, file: &str, out: &Out) -> Result<(), Fail> {
    let info: FileInfo = client.stat(&file_ref(file)?).await?;
    if out.json {
        out.json(&info);
        return Ok(());
    }
    println!("ref:          {}", info.locker_ref);
    println!("size:         {}", info.size);
    println!("sha256:       {}", info.sha256);
    println!("content_type: {}", info.content_type);
    if let Some(name) = &info.filename {
        println!("filename:     {name}");
    }
    println!("bucket_id:    {}", info.bucket_id);
    println!("created:      {}", time(info.created_at));
    println!("updated:      {}", time(info.updated_at));
    Ok(())
}

pub(crate) async fn url(client: &Client, file: &str, expires: u64, out: &Out) -> Result<(), Fail> {
    let signed = client.signed_url(&file_ref(file)?, Some(expires)).await?;
    if out.json {
        out.json(&signed);
    } else {
        println!("{}", signed.url);
    }
    Ok(())
}
