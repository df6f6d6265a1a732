//! The generated contracts: one module per versioned package in `proto/`.

#![allow(clippy::all, missing_docs, unreachable_pub, missing_debug_implementations)]

/// `dishpatch.restaurant.v1`: restaurants, menus and prices.
pub mod restaurant {
    pub mod v1 {
        tonic::include_proto!("dishpatch.restaurant.v1");
    }
}

/// `dishpatch.order.v1`: orders and their life cycle.
pub mod order {
    pub mod v1 {
        tonic::include_proto!("dishpatch.order.v1");
    }
}

/// `dishpatch.notify.v1`: the notification log and its live stream.
pub mod notify {
    pub mod v1 {
        tonic::include_proto!("dishpatch.notify.v1");
    }
}

/// Every dishpatch contract as an encoded `FileDescriptorSet`, for server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("dishpatch_descriptor");
