pub mod jwt_vectors;
pub mod vectors;
