pub mod jwt_vectors;
pub mod samples;
pub mod vectors;
