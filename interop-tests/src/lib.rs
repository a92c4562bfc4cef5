//! Helpers shared by the interop tests: locating real tools, temp blobs, tiny servers.
