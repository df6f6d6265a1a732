#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    dishpatch::service::main("notify-svc", notify_svc::build).await
}
