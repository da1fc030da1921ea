//! Reading and validating variables, collecting every problem instead of stopping at the
//! first.

use super::*;

pub(super) struct Reader<'a> {
    pub(super) env: &'a dyn EnvSource,
    pub(super) errors: Vec<VarError>,
}

impl Reader<'_> {
    pub(super) fn fail(&mut self, var: &str, reason: &str) {
        self.errors.push(VarError {
            var: var.to_owned(),
            reason: reason.to_owned(),
        });
    }

    pub(super) fn raw(&self, var: &str) -> Option<String> {
        self.env.get(var).filter(|v| !v.is_empty())
    }

    pub(super) fn string(&mut self, var: &str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_owned())
    }

    /// A secret from `VAR` or from the file named by `VAR_FILE` (not both).
    pub(super) fn secret(&mut self, var: &str) -> Option<Secret<String>> {
        let file_var = format!("{var}_FILE");
        match (self.raw(var), self.raw(&file_var)) {
            (Some(_), Some(_)) => {
                self.fail(var, &format!("set either {var} or {file_var}, not both"));
                None
            }
            (Some(v), None) => Some(Secret::new(v)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(v) => Some(Secret::new(v.trim_end_matches(['\n', '\r']).to_owned())),
                Err(e) => {
                    self.fail(&file_var, &format!("cannot read {path}: {e}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    pub(super) fn db_url(&mut self, var: &str, default: &str) -> Secret<String> {
        let url = self
            .secret(var)
            .unwrap_or_else(|| Secret::new(default.to_owned()));
        let u = url.expose();
        if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
            self.fail(var, "must be a postgres:// URL");
        }
        url
    }

    pub(super) fn parsed<T: FromStr>(&mut self, var: &str, default: Option<T>) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        match self.raw(var) {
            None => default,
            Some(v) => match v.parse::<T>() {
                Ok(t) => Some(t),
                Err(e) => {
                    self.fail(var, &format!("cannot parse {v:?}: {e}"));
                    None
                }
            },
        }
    }

    pub(super) fn ranged(&mut self, var: &str, default: u64, min: u64, max: u64) -> u64 {
        match self.raw(var) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    self.fail(
                        var,
                        &format!("expected a whole number from {min} to {max}, got {v:?}"),
                    );
                    default
                }
            },
        }
    }

    pub(super) fn bool(&mut self, var: &str, default: bool) -> bool {
        match self.raw(var).as_deref() {
            None => default,
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(v) => {
                self.fail(var, &format!("expected true or false, got {v:?}"));
                default
            }
        }
    }

    pub(super) fn object_store(&mut self) -> Option<ObjectStoreConfig> {
        match self.string("DOCKET_OBJECT_STORE", "local").as_str() {
            "local" => Some(ObjectStoreConfig::Local {
                dir: PathBuf::from(self.string("DOCKET_OBJECT_DIR", "./var/objects")),
            }),
            "s3" => {
                let required = |r: &mut Self, var: &str| {
                    r.raw(var).or_else(|| {
                        r.fail(var, "is required when DOCKET_OBJECT_STORE=s3");
                        None
                    })
                };
                let bucket = required(self, "DOCKET_S3_BUCKET");
                let access_key_id = required(self, "DOCKET_S3_ACCESS_KEY_ID");
                let secret = self.secret("DOCKET_S3_SECRET_ACCESS_KEY");
                if secret.is_none() {
                    self.fail(
                        "DOCKET_S3_SECRET_ACCESS_KEY",
                        "is required when DOCKET_OBJECT_STORE=s3",
                    );
                }
                let s3 = S3Config {
                    endpoint: self.raw("DOCKET_S3_ENDPOINT"),
                    bucket: bucket?,
                    region: self.string("DOCKET_S3_REGION", "us-east-1"),
                    access_key_id: access_key_id?,
                    secret_access_key: secret?,
                    allow_http: self.bool("DOCKET_S3_ALLOW_HTTP", false),
                };
                Some(ObjectStoreConfig::S3(s3))
            }
            other => {
                self.fail(
                    "DOCKET_OBJECT_STORE",
                    &format!("expected `local` or `s3`, got {other:?}"),
                );
                None
            }
        }
    }
}
