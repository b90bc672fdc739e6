//! Native objects as `jlong` handles: a leaked `Box<Arc<T>>`. Each call clones the `Arc`, so
//! an object stays alive for the whole call even if another thread destroys the handle; the
//! Kotlin side also keeps its wrapper reachable and serialises close against calls.
#![allow(unsafe_code)]

use std::sync::Arc;

use jni::sys::jlong;

use crate::error::BridgeError;

/// Box an object and return its handle.
pub fn new<T: Send + Sync + 'static>(v: T) -> jlong {
    Box::into_raw(Box::new(Arc::new(v))) as jlong
}

/// The object behind a handle. 0 (a closed wrapper) is refused.
pub fn get<T: Send + Sync + 'static>(h: jlong) -> Result<Arc<T>, BridgeError> {
    if h == 0 {
        return Err(BridgeError::Closed);
    }
    // SAFETY: non-zero handles come only from `new::<T>` and are destroyed once by the
    // close-once Kotlin wrapper of the matching type, after every call on it has returned.
    Ok(unsafe { (*(h as *const Arc<T>)).clone() })
}

/// Drop the handle's reference. 0 is ignored (closing twice is harmless).
pub fn destroy<T: Send + Sync + 'static>(h: jlong) {
    if h != 0 {
        // SAFETY: as for `get`; the Kotlin wrapper hands each handle to destroy exactly once.
        drop(unsafe { Box::from_raw(h as *mut Arc<T>) });
    }
}
