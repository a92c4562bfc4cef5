//! Where a blob is asked from ([`BlobOrigin`]) and where its bytes came from ([`Source`]):
//! plain data that every other module of the shim may name, importing nothing of the shim.

/// Where a blob comes from: the registry and repository it was asked under, and the client's
/// own credentials if it sent any (`Debug` redacts them).
#[derive(Clone, Debug)]
pub(crate) struct BlobOrigin {
    pub registry: String,
    pub repository: String,
    /// A miss with these comes from upstream with them, stays off the swarm and is marked
    /// private ([`crate::private::PrivateBlobs`]).
    pub auth: Option<oci_client::secrets::RegistryAuth>,
}

/// Where a blob's bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Peers,
    Webseed,
    Upstream,
}
