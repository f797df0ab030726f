
mod provenance;
