//! tower-sessions adapter (work in progress).
