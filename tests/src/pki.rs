//! The test PKI's files for a gateway's `[certificate]` table: the root, both MOICA
//! generations, and a current CRL from every CA a verification asks (G2, G3 about cards,
//! the root's about the CA certificates), so that only what a test changes fails closed.

use std::path::Path;

use menshen_pki::testpki::{Generation, TestPki};

/// Paths of the written files, as the config names them.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    pub root: String,
    pub g2: String,
    pub g3: String,
    pub g2_crl: String,
    pub g3_crl: String,
    pub root_crl: String,
}

impl PkiFiles {
    /// Writes the certificates and CRLs into `dir`: G3's CRL lists `g3_revoked`, the
    /// others list nothing.
    pub fn write(dir: &Path, pki: &TestPki, g3_revoked: &[u64]) -> PkiFiles {
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).expect("write PKI file");
            path.display().to_string()
        };
        PkiFiles {
            root: write("root.der", &pki.root_der),
            g2: write("moica-g2.der", &pki.ca_g2_der),
            g3: write("moica-g3.der", &pki.ca_g3_der),
            g2_crl: write("g2.crl", &pki.crl(Generation::G2, std::iter::empty())),
            g3_crl: write(
                "g3.crl",
                &pki.crl(Generation::G3, g3_revoked.iter().copied()),
            ),
            root_crl: write("grca.crl", &pki.root_crl(std::iter::empty())),
        }
    }

    /// `trust_anchors`, `intermediates` and `crls` lines naming every file.
    pub fn lines(&self) -> String {
        format!(
            "trust_anchors = [\"{}\"]\nintermediates = [\"{}\", \"{}\"]\n\
             crls = [\"{}\", \"{}\", \"{}\"]\n",
            self.root, self.g2, self.g3, self.g2_crl, self.g3_crl, self.root_crl
        )
    }
}
