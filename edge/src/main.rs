#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    edge::main_from(std::env::args_os()).await
}
