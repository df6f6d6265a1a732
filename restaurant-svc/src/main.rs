#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    dishpatch::service::main("restaurant-svc", restaurant_svc::build).await
}
