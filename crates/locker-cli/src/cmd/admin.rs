//! `keys`, `token`, `buckets`, `routes`, `stats`.

use locker_client::Client;
use locker_core::api::{
    CreateKey, KeyInfo, KeyList, MintToken, Op, Provider, RegisterBucket, Transport, Verify,
};

use super::logs::now_ms;
use crate::cli::{
    BucketsCommand, KeysCommand, OpArg, ProviderArg, RoutesCommand, TokenArgs, TransportArg,
    VerifyArg,
};
use crate::out::{time, Out};
use crate::Fail;

pub(crate) async fn keys(client: &Client, command: KeysCommand, out: &Out) -> Result<(), Fail> {
    match command {
        KeysCommand::Create {
            tenant,
            namespaces,
            ops,
            max_size,
            types,
            label,
            expires,
        } => {
            let request = CreateKey {
                tenant,
                namespaces,
                ops: ops
                    .into_iter()
                    .map(|o| match o {
                        OpArg::Read => Op::Read,
                        OpArg::Write => Op::Write,
                        OpArg::Delete => Op::Delete,
                        OpArg::Admin => Op::Admin,
                    })
                    .collect(),
                max_size,
                types,
                label,
                expires_in: expires,
            };
            let created = client.create_key(&request).await?;
            if out.json {
                out.json(&created);
            } else {
                // The one time a key is shown: the server keeps only its hash.
                println!("{}", created.key);
                eprintln!(
                    "key {} of tenant {} (shown once; save it now)",
                    created.id, created.tenant
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            let revoked = client.revoke_key(&id).await?;
            if out.json {
                out.json(&revoked);
            } else {
                println!("revoked {}", revoked.id);
            }
            Ok(())
        }
        KeysCommand::Ls => {
            let keys = client.keys().await?;
            if out.json {
                out.json(&KeyList { keys, cursor: None });
                return Ok(());
            }
            for k in &keys {
                println!("{}", key_line(k, now_ms()));
            }
            Ok(())
        }
    }
}

/// One key as a line: id, state, tenant, namespaces, ops, the limits it has, created, label.
fn key_line(k: &KeyInfo, now_ms: u64) -> String {
    let state = if k.revoked {
        "revoked"
    } else if k
        .expires_at
        .is_some_and(|at| at.saturating_mul(1000) <= now_ms)
    {
        "expired"
    } else {
        "active"
    };
    let ops: Vec<&str> = k.scopes.ops.iter().map(|o| o.as_str()).collect();
    let mut line = format!(
        "{}  {state:<7}  {}  ns={}  ops={}",
        k.id,
        k.tenant,
        k.scopes.namespaces.join(","),
        ops.join(",")
    );
    if let Some(max) = k.scopes.max_size {
        line.push_str(&format!("  max_size={max}"));
    }
    if let Some(types) = &k.scopes.types {
        line.push_str(&format!("  types={}", types.join(",")));
    }
    line.push_str(&format!("  created {}", time(k.created_at)));
    if let Some(at) = k.expires_at {
        line.push_str(&format!("  expires {}", time(at.saturating_mul(1000))));
    }
    if let Some(label) = &k.label {
        line.push_str(&format!("  label={label:?}"));
    }
    line
}

pub(crate) async fn token(client: &Client, args: TokenArgs, out: &Out) -> Result<(), Fail> {
    let minted = client
        .mint_token(&MintToken {
            namespace: args.namespace,
            path_prefix: args.prefix,
            max_size: args.max_size,
            types: args.types,
            ttl: args.ttl,
        })
        .await?;
    if out.json {
        out.json(&minted);
    } else {
        println!("{}", minted.token);
    }
    Ok(())
}

pub(crate) async fn buckets(
    client: &Client,
    command: BucketsCommand,
    out: &Out,
) -> Result<(), Fail> {
    let bucket = match command {
        BucketsCommand::Add {
            name,
            provider,
            transport,
            binding,
            account_id,
            jurisdiction,
            endpoint,
            region,
            path_style,
            verify,
        } => {
            let request = RegisterBucket {
                name,
                provider: match provider {
                    ProviderArg::R2 => Provider::R2,
                    ProviderArg::S3 => Provider::S3,
                },
                transport: transport.map(|t| match t {
                    TransportArg::Worker => Transport::Worker,
                    TransportArg::S3 => Transport::S3,
                }),
                binding,
                account_id,
                jurisdiction,
                endpoint,
                region,
                path_style,
                verify: verify.map(|v| match v {
                    VerifyArg::ReadBack => Verify::ReadBack,
                    VerifyArg::Checksum => Verify::Checksum,
                }),
            };
            client.register_bucket(&request).await?
        }
        BucketsCommand::Activate { id } => client.set_bucket_active(&id, true).await?,
        BucketsCommand::Deactivate { id } => client.set_bucket_active(&id, false).await?,
        BucketsCommand::Ls => {
            let list = client.buckets().await?;
            if out.json {
                out.json(&list);
            } else {
                for b in &list.buckets {
                    println!(
                        "{}  {:<8} {:<2} {:<6} {:<9} {}{}",
                        b.id,
                        if b.active { "active" } else { "inactive" },
                        b.provider.as_str(),
                        b.transport.as_str(),
                        b.verify.map_or("-", Verify::as_str),
                        b.name,
                        b.endpoint
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    );
                }
            }
            return Ok(());
        }
    };
    if out.json {
        out.json(&bucket);
    } else {
        println!(
            "{}  {}  {}",
            bucket.id,
            if bucket.active { "active" } else { "inactive" },
            bucket.name
        );
        if let Some([key, secret]) = &bucket.secrets {
            eprintln!("its credentials are the Worker secrets {key} and {secret}");
        }
    }
    Ok(())
}

pub(crate) async fn routes(client: &Client, command: RoutesCommand, out: &Out) -> Result<(), Fail> {
    match command {
        RoutesCommand::Set {
            namespace,
            bucket_id,
        } => {
            let set = client.set_route(&namespace, &bucket_id).await?;
            if out.json {
                out.json(&set);
            } else {
                println!("{} -> {}", set.namespace, set.bucket_id);
            }
        }
        RoutesCommand::Ls => {
            let list = client.routes().await?;
            if out.json {
                out.json(&list);
            } else {
                for r in &list.routes {
                    println!(
                        "{} -> {}  ({})",
                        r.namespace,
                        r.bucket_id,
                        time(r.updated_at)
                    );
                }
                println!("(otherwise) -> {}", list.default_bucket_id);
            }
        }
    }
    Ok(())
}

pub(crate) async fn stats(client: &Client, out: &Out) -> Result<(), Fail> {
    let s = client.stats().await?;
    if out.json {
        out.json(&s);
        return Ok(());
    }
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    println!("files:       {}", s.files);
    println!("blobs:       {}", opt(s.blobs));
    println!("objects:     {}", opt(s.objects));
    println!(
        "uploads:     {} pending, {} committed, {} aborted, {} expired",
        s.uploads.pending, s.uploads.committed, s.uploads.aborted, s.uploads.expired
    );
    println!("access log:  {} rows", s.access_log);
    for b in &s.buckets {
        println!(
            "bucket {} ({}, {}): {} files, {} blobs",
            b.name,
            b.transport.as_str(),
            if b.active == 1 { "active" } else { "inactive" },
            b.files,
            opt(b.blobs)
        );
    }
    let i = &s.integrity;
    println!(
        "integrity:   {} routes, {} files, {} blobs without a bucket; {} files without a verified blob",
        i.routes_without_bucket,
        i.files_without_bucket,
        opt(i.blobs_without_bucket),
        i.files_without_verified_blob
    );
    Ok(())
}
