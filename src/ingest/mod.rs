//! Ingest stage: where CloudTrail objects come from. The daemon reads S3
//! object notifications from SQS ([`sqs`]) and fetches the objects from S3
//! ([`s3`]); `replay` reads local files or an S3 prefix ([`local`]).

pub mod ack;
pub mod deferred;
pub mod local;
pub mod notification;
pub mod s3;
pub mod sqs;
