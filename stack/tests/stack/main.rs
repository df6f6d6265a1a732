//! The stack as a user runs it: the launcher on one machine, and the files
//! that run it in containers and on Kubernetes.

mod deploy;
mod launcher;
