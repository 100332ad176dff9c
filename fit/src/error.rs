//! Errors of the fitting crate; each names what is wrong and how to fix it.

#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// A parameter specification is invalid (unknown name, group, bad bound).
    #[error("fit parameter `{param}`: {message}")]
    Param { param: String, message: String },
    /// The network cannot be used for fitting.
    #[error("fit network: {0}")]
    Network(String),
    /// Inputs or data do not fit the network (sizes, NaN, no overlap).
    #[error("fit data: {0}")]
    Data(String),
    /// The loss or a gradient became non-finite.
    #[error("non-finite {what} at {where_}: {hint}")]
    NonFinite { what: String, where_: String, hint: String },
    /// A request too large for this machine (estimate given).
    #[error("fit too large: {0}")]
    TooLarge(String),
}
