use std::path::{Path, PathBuf};

use evoucher_core::encode::encode;
use evoucher_core::keys::IssuerKey;
use evoucher_core::qr;
use evoucher_core::voucher::{Item, Voucher, VoucherBuilder, VoucherId};

use crate::util::{self, io_err, parse_item, usage, CliError, Outcome};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").args(["beneficiary", "csv"]).required(true)))]
pub struct Args {
    /// Issuer private key (JWK, from `evoucher keygen`).
    #[arg(long)]
    key: PathBuf,
    /// Issuer (CWT `iss`), usually the program's URL.
    #[arg(long)]
    iss: String,
    /// Program id.
    #[arg(long)]
    program: String,
    /// Pseudonymous beneficiary id (single voucher).
    #[arg(long, conflicts_with = "csv")]
    beneficiary: Option<String>,
    /// Beneficiary display name, printed on the voucher.
    #[arg(long, conflicts_with = "csv")]
    name: Option<String>,
    /// Cash value in minor units of --currency (e.g. 2500 = 25.00 KES).
    #[arg(long, requires = "currency")]
    amount: Option<u64>,
    /// ISO 4217 currency code.
    #[arg(long, requires = "amount")]
    currency: Option<String>,
    /// In-kind item CODE:QTY[:UNIT]; repeat for several.
    #[arg(long = "item", value_name = "CODE:QTY[:UNIT]")]
    items: Vec<String>,
    /// The one service provider allowed to redeem (CWT `aud`).
    #[arg(long)]
    aud: Option<String>,
    /// Partial use: drawn down over several visits (default: single use, whole).
    #[arg(long)]
    partial: bool,
    /// Cycle id within the program.
    #[arg(long)]
    cycle: Option<String>,
    /// Provider category allowed to redeem; repeat for several.
    #[arg(long = "category")]
    categories: Vec<String>,
    /// Valid from (RFC 3339); default now.
    #[arg(long)]
    valid_from: Option<String>,
    /// Valid until (RFC 3339, exclusive).
    #[arg(long, conflicts_with = "valid_days")]
    valid_until: Option<String>,
    /// Valid for this many days from --valid-from (default 90).
    #[arg(long)]
    valid_days: Option<u32>,
    /// Write the QR code as PNG.
    #[arg(long, conflicts_with = "csv")]
    png: Option<PathBuf>,
    /// Write the QR code as SVG.
    #[arg(long, conflicts_with = "csv")]
    svg: Option<PathBuf>,
    /// Pixels per QR module in PNGs.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=40))]
    scale: u16,
    /// Batch: a CSV of beneficiaries with a header row: beneficiary_id (required), name,
    /// amount, items (CODE:QTY[:UNIT] separated by ';'); empty cells take the command's values.
    #[arg(long, requires = "out_dir")]
    csv: Option<PathBuf>,
    /// Batch: where to write one PNG per voucher and index.csv.
    #[arg(long, requires = "csv")]
    out_dir: Option<PathBuf>,
    /// Print JSON: one object (single) or a summary (batch).
    #[arg(long)]
    json: bool,
}

/// What every voucher of one command shares.
struct Template<'a> {
    a: &'a Args,
    from: i64,
    until: i64,
    items: Vec<Item>,
}

impl Template<'_> {
    fn build(
        &self,
        beneficiary: &str,
        name: Option<&str>,
        amount: Option<u64>,
        items: Option<Vec<Item>>,
    ) -> Result<Voucher, CliError> {
        let a = self.a;
        let mut b = VoucherBuilder::new(&a.iss, &a.program, beneficiary)
            .validity(self.from, self.until)
            .id(VoucherId::random()?);
        if let Some(n) = name {
            b = b.name(n);
        }
        if let (Some(amount), Some(cur)) = (amount.or(a.amount), &a.currency) {
            b = b.value(amount, cur);
        } else if amount.is_some() {
            return Err(usage("a CSV amount needs --currency"));
        }
        for it in items.unwrap_or_else(|| self.items.clone()) {
            b = b.item_full(it);
        }
        if let Some(aud) = &a.aud {
            b = b.audience(aud);
        }
        if let Some(c) = &a.cycle {
            b = b.cycle(c);
        }
        if a.partial {
            b = b.partial();
        }
        for c in &a.categories {
            b = b.category(c);
        }
        b.build()
            .map_err(|e| usage(format!("voucher is invalid: {e}")))
    }
}

pub fn run(a: Args) -> Result<Outcome, CliError> {
    let key = IssuerKey::read(&a.key)
        .map_err(|e| usage(format!("issuer key {}: {e}", a.key.display())))?;
    let from = match &a.valid_from {
        Some(t) => util::parse_time(t)?,
        None => util::now(),
    };
    let until = match (&a.valid_until, a.valid_days) {
        (Some(t), _) => util::parse_time(t)?,
        (None, d) => from + i64::from(d.unwrap_or(90)) * 86_400,
    };
    let items = a
        .items
        .iter()
        .map(|s| parse_item(s))
        .collect::<Result<Vec<_>, _>>()?;
    let t = Template {
        a: &a,
        from,
        until,
        items,
    };
    match (&a.csv, &a.out_dir, &a.beneficiary) {
        (Some(csv), Some(dir), _) => batch(&t, &key, csv, dir),
        (None, None, Some(ben)) => single(&t, &key, ben),
        _ => Err(usage("give --beneficiary, or --csv with --out-dir")),
    }
}

fn single(t: &Template, key: &IssuerKey, ben: &str) -> Result<Outcome, CliError> {
    let a = t.a;
    let v = t.build(ben, a.name.as_deref(), None, None)?;
    let enc = encode(&v, key)?;
    let sym = qr::symbol(&enc.text)?;
    if let Some(p) = &a.png {
        write_file(p, &sym.png(usize::from(a.scale))?)?;
    }
    if let Some(p) = &a.svg {
        write_file(p, sym.svg().as_bytes())?;
    }
    if a.json {
        util::print_json(&serde_json::json!({
            "text": enc.text,
            "id": v.id,
            "kid": key.kid().to_b64(),
            "qr_version": sym.version,
            "voucher": v,
        }));
    } else {
        println!("{}", enc.text);
    }
    Ok(Outcome::Ok)
}

fn batch(t: &Template, key: &IssuerKey, csv_path: &Path, dir: &Path) -> Result<Outcome, CliError> {
    // Validate and encode every row first: a bad row changes nothing on disk. The roster
    // format and its checks are evoucher-core's (shared with the server's CSV import).
    let bytes =
        std::fs::read(csv_path).map_err(io_err(format!("reading {}", csv_path.display())))?;
    let rows = evoucher_core::roster::parse(&bytes)
        .map_err(|e| usage(format!("CSV {}: {e}", csv_path.display())))?;
    let mut vouchers = Vec::with_capacity(rows.len());
    for row in rows {
        let v = t
            .build(&row.id, row.name.as_deref(), row.amount, row.items)
            .map_err(|e| usage(format!("CSV {} line {}: {e}", csv_path.display(), row.line)))?;
        vouchers.push(v);
    }
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let bar = indicatif::ProgressBar::new(vouchers.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} vouchers  {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let tmp_index = dir.join(".index.csv.tmp");
    let mut idx = csv::Writer::from_path(&tmp_index)
        .map_err(|e| usage(format!("writing {}: {e}", tmp_index.display())))?;
    let idx_err = |e: csv::Error| usage(format!("writing index: {e}"));
    idx.write_record(["row", "beneficiary_id", "voucher_id", "png", "text"])
        .map_err(idx_err)?;
    for (i, v) in vouchers.iter().enumerate() {
        let enc = encode(v, key)?;
        let file = format!("voucher-{}.png", v.id);
        write_file(
            &dir.join(&file),
            &qr::png(&enc.text, usize::from(t.a.scale))?,
        )?;
        idx.write_record([
            (i + 1).to_string(),
            v.beneficiary.id.clone(),
            v.id.to_hex(),
            file,
            enc.text,
        ])
        .map_err(idx_err)?;
        bar.inc(1);
    }
    idx.flush().map_err(io_err("writing index"))?;
    drop(idx);
    let index = dir.join("index.csv");
    std::fs::rename(&tmp_index, &index).map_err(io_err("renaming index"))?;
    bar.finish_and_clear();
    if t.a.json {
        util::print_json(&serde_json::json!({
            "issued": vouchers.len(),
            "out_dir": dir.display().to_string(),
            "index": index.display().to_string(),
            "kid": key.kid().to_b64(),
        }));
    } else {
        println!(
            "issued {} vouchers into {} (index: {})",
            vouchers.len(),
            dir.display(),
            index.display()
        );
    }
    Ok(Outcome::Ok)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(io_err(format!("writing {}", path.display())))
}
