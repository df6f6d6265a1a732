#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    dishpatch::binary::main("order-svc", order_svc::build).await
}
