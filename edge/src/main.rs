// One thread: parallelism comes from running more processes (see the
// stack binary's `serving_runtime`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    dishpatch::binary::main("edge", edge::build).await
}
