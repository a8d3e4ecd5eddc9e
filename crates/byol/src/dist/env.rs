//! The environment `torchrun`, Slurm and Kubernetes launchers give each
//! process: its rank, the world size, and where rank 0 listens.
use crate::error::{Error, Result};

/// How `fit` decides whether to train data-parallel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Join a process group when the launcher's environment says so
    /// (`WORLD_SIZE` set), else train alone.
    #[default]
    Auto,
    /// Train alone, whatever the environment says.
    Single,
    /// Data-parallel: the launcher's environment is required.
    Ddp,
}

impl Strategy {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "single" => Ok(Self::Single),
            "ddp" => Ok(Self::Ddp),
            other => Err(Error::invalid("strategy", "'auto', 'single' or 'ddp'", format!("'{other}'"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Single => "single",
            Self::Ddp => "ddp",
        }
    }
}

/// torchrun's variables, as one process sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistEnv {
    pub rank: usize,
    pub world_size: usize,
    pub local_rank: usize,
    pub local_world_size: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// Set when torchrun's agent serves the store (`TORCHELASTIC_USE_AGENT_STORE`):
    /// the workers' restart count (`TORCHELASTIC_RESTART_COUNT`).
    pub agent_restart: Option<u64>,
}

impl DistEnv {
    /// The process's own environment; `None` when `WORLD_SIZE` is not set.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As `from_env`, with the variables read by `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(world) = var("WORLD_SIZE") else { return Ok(None) };
        let number = |name: &str, value: Option<String>| -> Result<usize> {
            let value = value.ok_or_else(|| Error::invalid(name, format!("{name} set, as WORLD_SIZE is"), "not set"))?;
            value.trim().parse::<usize>().map_err(|_| Error::invalid(name, "a whole number >= 0", format!("'{value}'")))
        };
        let world_size = number("WORLD_SIZE", Some(world))?;
        if world_size < 1 {
            return Err(Error::range("WORLD_SIZE", "at least 1 process", world_size));
        }
        let rank = number("RANK", var("RANK"))?;
        if rank >= world_size {
            return Err(Error::range("RANK", format!("a rank below WORLD_SIZE ({world_size})"), rank));
        }
        // Launchers that only set the global variables run one process per host.
        let local_rank = match var("LOCAL_RANK") {
            Some(v) => number("LOCAL_RANK", Some(v))?,
            None => 0,
        };
        let local_world_size = match var("LOCAL_WORLD_SIZE") {
            Some(v) => number("LOCAL_WORLD_SIZE", Some(v))?,
            None => 1,
        };
        if local_rank >= local_world_size.max(1) {
            return Err(Error::range("LOCAL_RANK", format!("a rank below LOCAL_WORLD_SIZE ({local_world_size})"), local_rank));
        }
        let master_addr = var("MASTER_ADDR")
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| Error::invalid("MASTER_ADDR", "the host of rank 0, set as WORLD_SIZE is", "not set"))?;
        let port = number("MASTER_PORT", var("MASTER_PORT"))?;
        let master_port =
            u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| Error::range("MASTER_PORT", "a TCP port from 1 to 65535", port))?;
        let agent_restart = match var("TORCHELASTIC_USE_AGENT_STORE").as_deref().map(str::trim) {
            Some("True") | Some("true") | Some("1") => {
                Some(var("TORCHELASTIC_RESTART_COUNT").and_then(|c| c.trim().parse().ok()).unwrap_or(0))
            }
            _ => None,
        };
        Ok(Some(Self { rank, world_size, local_rank, local_world_size, master_addr, master_port, agent_restart }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn no_world_size_means_no_group() {
        assert_eq!(DistEnv::from_vars(vars(&[("RANK", "0")])).ok(), Some(None));
    }

    #[test]
    fn torchruns_variables_are_read() {
        let env = DistEnv::from_vars(vars(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "1"),
            ("LOCAL_WORLD_SIZE", "2"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29500"),
        ]));
        let env = env.ok().flatten();
        assert_eq!(env.as_ref().map(|e| (e.rank, e.world_size, e.local_rank, e.master_port)), Some((3, 4, 1, 29500)));
    }

    #[test]
    fn a_rank_outside_the_world_is_an_error_naming_rank() {
        let e = DistEnv::from_vars(vars(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "a"), ("MASTER_PORT", "1")]));
        assert_eq!(e.err().and_then(|e| e.argument().map(String::from)).as_deref(), Some("RANK"));
    }

    #[test]
    fn a_missing_master_port_is_an_error_naming_it() {
        let e = DistEnv::from_vars(vars(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "a")]));
        assert_eq!(e.err().and_then(|e| e.argument().map(String::from)).as_deref(), Some("MASTER_PORT"));
    }
}
