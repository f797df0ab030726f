//! `helico registry` and `helico schema`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use helico::config;
use helico::exit;
use helico::registry::describe;

#[derive(Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub command: RegistryCommand,
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// List every slot and its variants.
    List {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a variant's parameters (types, defaults, docs), or every variant of a slot.
    Show {
        /// `slot.variant` (e.g. model.d3pm_lm, attention.sdpa) or a slot (e.g. schedule).
        what: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn schema() -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&config::schema::experiment_schema())?);
    Ok(ExitCode::SUCCESS)
}

pub fn registry(a: RegistryArgs) -> anyhow::Result<ExitCode> {
    let slots = describe::slots(&config::schema::Schema::experiment());
    let (what, json) = match a.command {
        RegistryCommand::List { json: true } => {
            println!("{}", serde_json::to_string_pretty(&slots)?);
            return Ok(ExitCode::SUCCESS);
        }
        RegistryCommand::List { json: false } => {
            print!("{}", describe::render_list(&slots));
            return Ok(ExitCode::SUCCESS);
        }
        RegistryCommand::Show { what, json } => (what, json),
    };
    let (slot, variant) = describe::find(&slots, &what).map_err(exit::BadInput)?;
    if json {
        let out = match variant {
            Some(v) => serde_json::to_value(v)?,
            None => serde_json::to_value(slot)?,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", describe::render_show(slot, variant));
    }
    Ok(ExitCode::SUCCESS)
}
