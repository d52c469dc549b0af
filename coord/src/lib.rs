//! fjord-coord
