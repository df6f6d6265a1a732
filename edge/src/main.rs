use clap::Parser;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    dishpatch::telemetry::init();
    let config = edge::Config::parse();
    let shutdown = dishpatch::shutdown::on_signal()?;
    let edge = edge::build(config).await?;
    // One line on stdout that launchers and tests read to find the port.
    println!("edge listening on {}", edge.local_addr());
    edge.run(shutdown).await?;
    Ok(())
}
