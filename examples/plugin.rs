//! A plugin written in Rust (examples/guests/rust/greeter), compiled to WebAssembly and
//! hosted in the sandbox. Build it with `examples/guests/build.sh rust`, then run
//! `cargo run --example plugin [greeter.wasm]`.
use switchyard::{Runtime, WasmHost, WasmOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().build()?;
    let host = WasmHost::new(Default::default())?;
    let code = host.load_file(std::env::args().nth(1).unwrap_or("examples/guests/build/rust/greeter.wasm".into()))?;
    let greeter = host.spawn(&rt, "greeter", &code, WasmOptions::default())?;
    println!("{}", greeter.ask::<String>(&"world").wait()?);
    Ok(())
}
