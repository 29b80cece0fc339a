//! MASP (in progress).
