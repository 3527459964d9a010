//! `locker profile set|ls|rm`: named servers in the config file. The key goes in through
//! LOCKER_KEY or stdin (never an argument, which `ps` and shell history would show) and is
//! never printed.

use std::io::BufRead;

use serde::Serialize;

use crate::cli::ProfileCommand;
use crate::out::Out;
use crate::profile::{config_path, Config, Profile};
use crate::Fail;

#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    url: &'a str,
    default: bool,
}

pub(crate) fn run(command: ProfileCommand, out: &Out) -> Result<(), Fail> {
    let path = config_path()?;
    let mut config = Config::load(&path)?;
    match command {
        ProfileCommand::Set { name, url, default } => {
            let key = match std::env::var("LOCKER_KEY").ok().filter(|k| !k.is_empty()) {
                Some(k) => k,
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .map_err(|e| Fail::Usage(format!("cannot read the key from stdin: {e}")))?;
                    line.trim().to_owned()
                }
            };
            // The same checks a connection makes, so a profile that cannot work is not saved.
            locker_client::Client::new(&url, &key).map_err(|e| Fail::Usage(e.message()))?;
            config.profiles.insert(name.clone(), Profile { url, key });
            if default || config.default.is_none() {
                config.default = Some(name.clone());
            }
            config.save(&path)?;
            if !out.json {
                println!("saved profile {name} in {}", path.display());
            }
        }
        ProfileCommand::Rm { name } => {
            if config.profiles.remove(&name).is_none() {
                return Err(Fail::Usage(format!(
                    "no profile {name:?} in {}",
                    path.display()
                )));
            }
            if config.default.as_deref() == Some(name.as_str()) {
                config.default = None;
            }
            config.save(&path)?;
        }
        ProfileCommand::Ls => {
            let listed: Vec<Listed<'_>> = config
                .profiles
                .iter()
                .map(|(name, p)| Listed {
                    name,
                    url: &p.url,
                    default: config.default.as_deref() == Some(name.as_str()),
                })
                .collect();
            if out.json {
                out.json(&listed);
            } else {
                for l in &listed {
                    println!(
                        "{}{}  {}",
                        l.name,
                        if l.default { " (default)" } else { "" },
                        l.url
                    );
                }
            }
        }
    }
    Ok(())
}
