use switchyard_guest::{Component, Context, Error};

#[derive(Default)]
pub struct Greeter;

impl Component for Greeter {
    type Message = String;
    type Reply = String;
    fn handle(&mut self, _ctx: &mut Context<'_>, name: String) -> Result<String, Error> {
        Ok(format!("Hello, {name}!"))
    }
}

switchyard_guest::export!(Greeter);
