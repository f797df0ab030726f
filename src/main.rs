fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ov: Vec<helico::config::overrides::Override> = args[1..].iter().map(|a| helico::config::overrides::parse(a).unwrap()).collect();
    let inputs = helico::config::Inputs::new(std::path::Path::new(&args[0]), &[], &ov, &args[1..]);
    match helico::config::resolve(&inputs) {
        Ok(r) => { println!("{}", r.to_toml()); println!("hash {}", r.config_hash); for d in r.dropped() { println!("dropped {:?}", d); } }
        Err(e) => eprintln!("{e}"),
    }
}
