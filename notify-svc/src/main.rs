#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    dishpatch::binary::main("notify-svc", notify_svc::build).await
}
