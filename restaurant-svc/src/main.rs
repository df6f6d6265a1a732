#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    dishpatch::binary::main("restaurant-svc", restaurant_svc::build).await
}
