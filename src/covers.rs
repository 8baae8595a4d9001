//! Cover art: a disk cache of downloaded images, the terminal's graphics protocol, and a cover
//! ready to draw from a pure view.
//!
//! [`Covers::load`] gives a decoded image, from the cache or the network. [`picker`] tells from the
//! environment how the terminal can show pictures. [`Cover::new`] fits an image into a number
//! of cells for that terminal (CPU work: run it off the UI thread, e.g. in `spawn_blocking`), and
//! [`Cover::render`] draws it with only `&self`, so a `Cover` can live in the model.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use image::DynamicImage;
use ratatui::Frame;
use ratatui::layout::{Rect, Size};
use ratatui_image::FontSize;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::{FilterType, Image, Resize};

use crate::providers::{Http, describe_transport};

/// The largest cover downloaded, in bytes. MAL's covers are well under 200 KB.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;

/// The largest width or height decoded: a 5 MB file can still claim to be a huge picture.
const MAX_SIDE: u32 = 8192;

/// Downloads covers and keeps them on disk. Clones share the HTTP client.
#[derive(Clone)]
pub struct Covers {
    dir: PathBuf,
    http: Http,
}

impl Covers {
    /// Covers cached in `dir` (created with mode 0700 when first needed).
    pub fn new(dir: PathBuf, http: Http) -> Covers {
        Covers { dir, http }
    }

    /// Where the cover at `url` is cached.
    pub fn cache_path(&self, url: &str) -> PathBuf {
        self.dir.join(file_name(url))
    }

    /// The image at `url` (`http` or `https` only): from the cache when it is there and readable,
    /// otherwise downloaded, decoded and then cached.
    pub async fn load(&self, url: &str) -> Result<DynamicImage, String> {
        let parsed =
            url::Url::parse(url).map_err(|_| "the cover address is not valid".to_string())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("the cover address is not a web address".to_string());
        }
        let path = self.cache_path(url);

        let cached = {
            let path = path.clone();
            blocking(move || read_cached(&path)).await?
        };
        if let Some(image) = cached {
            return Ok(image);
        }

        let bytes = self.download(parsed).await?;
        let dir = self.dir.clone();
        blocking(move || {
            let image = decode(&bytes)?;
            if let Err(e) = write_cache(&dir, &path, &bytes) {
                tracing::warn!(error = %e, "cannot keep a cover in the cache");
            }
            Ok(image)
        })
        .await?
    }

    async fn download(&self, url: url::Url) -> Result<Vec<u8>, String> {
        let client = self.http.client()?;
        let mut response = client
            .get(url)
            .send()
            .await
            .map_err(|e| describe_transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the cover server answered {status}"));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe_transport(&e))? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn too_large() -> String {
    format!("the cover is larger than {} MB", MAX_BYTES / (1024 * 1024))
}

/// Runs file and decoding work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| "reading the cover failed".to_string())
}

/// The cached image, or `None` to download it. A file that does not decode is deleted.
fn read_cached(path: &Path) -> Option<DynamicImage> {
    let damaged = || {
        tracing::info!("a cached cover was damaged: downloading it again");
        let _ = std::fs::remove_file(path);
        None
    };
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_BYTES as u64) {
        return damaged();
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a cached cover");
            return None;
        }
    };
    match decode(&bytes) {
        Ok(image) => Some(image),
        Err(_) => damaged(),
    }
}

/// Decodes PNG, JPEG or WebP, telling them apart by their first bytes.
fn decode(bytes: &[u8]) -> Result<DynamicImage, String> {
    let not_readable = "the cover is not a readable image";
    let mut reader = image::ImageReader::new(io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| not_readable.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    reader.decode().map_err(|_| not_readable.to_string())
}

/// Writes `bytes` to `path` through a temporary file in `dir`, so a reader never sees half a file.
fn write_cache(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_dir(dir)?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cover"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The cache file's name for `url`: the FNV-1a 64 hash of the whole address in hex, and the
/// extension of its path when it is one of the image kinds MAL serves.
pub fn file_name(url: &str) -> String {
    let hash = fnv1a64(url.as_bytes());
    let path = url::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let ext = path
        .rsplit_once('/')
        .map_or(path.as_str(), |(_, last)| last)
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .filter(|ext| matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "webp"))
        .unwrap_or_else(|| "img".to_string());
    format!("{hash:016x}.{ext}")
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// How to draw images on this terminal: kitty, sixel or iTerm2 graphics when the environment says
/// the terminal has them, half blocks otherwise.
///
/// The terminal is not asked over its input: its answer would race with the keys the app reads,
/// and a terminal that never answers (tmux, by default) would hold the first keypresses hostage.
/// The cell size in pixels comes from the window size the kernel knows (`TIOCGWINSZ`).
pub fn picker() -> Picker {
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let protocol = graphics_from_env(&env("TERM"), &env("TERM_PROGRAM"), |name| {
        std::env::var_os(name).is_some()
    });
    let font = crossterm::terminal::window_size().ok().and_then(|w| {
        (w.columns > 0 && w.rows > 0 && w.width >= w.columns && w.height >= w.rows)
            .then(|| FontSize::new(w.width / w.columns, w.height / w.rows))
    });
    match (protocol, font) {
        (Some(protocol), Some(font)) => {
            // Deprecated in favour of asking the terminal, which is what must not happen here.
            #[allow(deprecated)]
            let mut picker = Picker::from_fontsize(font);
            picker.set_protocol_type(protocol);
            tracing::debug!(?protocol, ?font, "terminal graphics");
            picker
        }
        _ => halfblocks_picker(),
    }
}

/// The graphics protocol a terminal is known to speak, from `TERM`, `TERM_PROGRAM` and whether
/// some variables are set. Inside tmux or screen, images would need passthrough: half blocks.
pub fn graphics_from_env(
    term: &str,
    program: &str,
    is_set: impl Fn(&str) -> bool,
) -> Option<ProtocolType> {
    if is_set("TMUX") || term.starts_with("screen") || term.starts_with("tmux") {
        return None;
    }
    if is_set("KITTY_WINDOW_ID") || term.contains("kitty") || term.contains("ghostty") {
        return Some(ProtocolType::Kitty);
    }
    match program {
        "iTerm.app" | "WezTerm" => return Some(ProtocolType::Iterm2),
        "ghostty" => return Some(ProtocolType::Kitty),
        _ => {}
    }
    if ["foot", "mlterm", "contour", "yaft"]
        .iter()
        .any(|t| term.starts_with(t))
    {
        return Some(ProtocolType::Sixel);
    }
    None
}

/// A picker that draws with half blocks and asks the terminal nothing.
pub fn halfblocks_picker() -> Picker {
    Picker::halfblocks()
}

/// A cover fitted to a number of cells and encoded for the terminal. Cheap to clone; two covers
/// are equal when they are the same encoding.
#[derive(Clone)]
pub struct Cover(Arc<Protocol>);

impl Cover {
    /// Fits `image` into `area_cols` × `area_rows` cells, keeping its proportions (small images are
    /// scaled up). This resizes and encodes the image: CPU work to keep off the UI thread.
    pub fn new(
        picker: &Picker,
        image: DynamicImage,
        area_cols: u16,
        area_rows: u16,
    ) -> Result<Cover, String> {
        if area_cols == 0 || area_rows == 0 {
            return Err("no room for the cover".to_string());
        }
        if image.width() == 0 || image.height() == 0 {
            return Err("the cover is empty".to_string());
        }
        let protocol = picker
            .new_protocol(
                image,
                Size::new(area_cols, area_rows),
                Resize::Scale(Some(FilterType::Triangle)),
            )
            .map_err(|e| format!("cannot prepare the cover: {e}"))?;
        Ok(Cover(Arc::new(protocol)))
    }

    /// The cells the cover covers, at most the area it was made for: `(columns, rows)`.
    pub fn size(&self) -> (u16, u16) {
        let size = self.0.size();
        (size.width, size.height)
    }

    /// Draws the cover at the top left of `area`. Nothing is drawn when `area` is smaller than
    /// [`Cover::size`].
    pub fn render(&self, frame: &mut Frame, area: Rect) {
        frame.render_widget(Image::new(&self.0), area);
    }
}

impl fmt::Debug for Cover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, h) = self.size();
        write!(f, "Cover({w}x{h})")
    }
}

impl PartialEq for Cover {
    fn eq(&self, other: &Cover) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn graphics_come_from_the_environment_not_a_query() {
        let none = |_: &str| false;
        assert_eq!(
            super::graphics_from_env("xterm-kitty", "", none),
            Some(super::ProtocolType::Kitty)
        );
        assert_eq!(
            super::graphics_from_env("xterm-256color", "iTerm.app", none),
            Some(super::ProtocolType::Iterm2)
        );
        assert_eq!(
            super::graphics_from_env("foot", "", none),
            Some(super::ProtocolType::Sixel)
        );
        assert_eq!(super::graphics_from_env("xterm-256color", "", none), None);
        assert_eq!(
            super::graphics_from_env("xterm-kitty", "", |v| v == "TMUX"),
            None,
            "inside tmux: half blocks"
        );
    }

    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 60]));
        let mut out = io::Cursor::new(Vec::new());
        image
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encode png");
        out.into_inner()
    }

    fn covers(dir: &Path) -> Covers {
        Covers::new(dir.join("covers"), Http::default())
    }

    /// A server on a loopback port that answers every request with `head` then `body`, and
    /// counts the requests.
    async fn serve(head: String, body: Vec<u8>) -> (String, Arc<AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let head = head.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        (format!("http://{addr}"), hits)
    }

    fn ok_head(len: Option<usize>) -> String {
        match len {
            Some(n) => {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n")
            }
            None => "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string(),
        }
    }

    #[test]
    fn cache_file_names_are_stable() {
        let url = "https://cdn.myanimelist.net/images/anime/1015/138006.jpg";
        assert_eq!(file_name(url), file_name(url));
        assert_eq!(
            file_name(url),
            format!("{:016x}.jpg", fnv1a64(url.as_bytes()))
        );
        // Known FNV-1a 64 values.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(file_name(url), file_name(&url.replace("1015", "1016")));
        assert!(file_name("https://x.test/a/B.WEBP?s=1").ends_with(".webp"));
        assert!(file_name("https://x.test/a/cover").ends_with(".img"));
        assert!(file_name("https://x.test/a.b/cover.exe").ends_with(".img"));
        assert_eq!(file_name(url).len(), 16 + 4);
    }

    #[tokio::test]
    async fn a_cached_cover_is_read_without_the_network() {
        let dir = tempfile::tempdir().unwrap();
        let covers = covers(dir.path());
        // Port 9 (discard) on loopback: nothing answers there.
        let url = "http://127.0.0.1:9/x.png";
        std::fs::create_dir_all(dir.path().join("covers")).unwrap();
        std::fs::write(covers.cache_path(url), png(3, 5)).unwrap();
        let image = covers.load(url).await.expect("read from the cache");
        assert_eq!((image.width(), image.height()), (3, 5));
    }

    #[tokio::test]
    async fn a_download_is_decoded_and_cached() {
        let dir = tempfile::tempdir().unwrap();
        let covers = covers(dir.path());
        let body = png(4, 6);
        let (base, hits) = serve(ok_head(Some(body.len())), body.clone()).await;
        let url = format!("{base}/images/1.png?token=secret");
        let image = covers.load(&url).await.expect("downloaded");
        assert_eq!((image.width(), image.height()), (4, 6));
        assert_eq!(std::fs::read(covers.cache_path(&url)).unwrap(), body);
        covers.load(&url).await.expect("cached");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the second load is a cache hit"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("covers"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("covers"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }

    #[tokio::test]
    async fn a_damaged_cached_file_is_downloaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let covers = covers(dir.path());
        let body = png(2, 2);
        let (base, hits) = serve(ok_head(Some(body.len())), body.clone()).await;
        let url = format!("{base}/c.png");
        std::fs::create_dir_all(dir.path().join("covers")).unwrap();
        std::fs::write(covers.cache_path(&url), b"not an image").unwrap();
        covers.load(&url).await.expect("downloaded again");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(std::fs::read(covers.cache_path(&url)).unwrap(), body);
    }

    #[tokio::test]
    async fn too_large_covers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let covers = covers(dir.path());
        let body = vec![0u8; MAX_BYTES + 1];

        // Announced by Content-Length.
        let (base, _) = serve(ok_head(Some(body.len())), body.clone()).await;
        let err = covers.load(&format!("{base}/big.jpg")).await.unwrap_err();
        assert!(err.contains("larger"), "{err}");

        // Not announced: the body is cut off at the cap.
        let (base, _) = serve(ok_head(None), body).await;
        let url = format!("{base}/big.jpg");
        let err = covers.load(&url).await.unwrap_err();
        assert!(err.contains("larger"), "{err}");
        assert!(!covers.cache_path(&url).exists());
    }

    #[tokio::test]
    async fn bad_image_bytes_are_an_error_and_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let covers = covers(dir.path());
        let body = b"<html>not found</html>".to_vec();
        let (base, _) = serve(ok_head(Some(body.len())), body).await;
        let url = format!("{base}/x.jpg");
        let err = covers.load(&url).await.unwrap_err();
        assert_eq!(err, "the cover is not a readable image");
        assert!(!covers.cache_path(&url).exists());
        assert_eq!(
            decode(b"\x89PNG\r\n\x1a\nbroken").unwrap_err(),
            "the cover is not a readable image"
        );
    }

    #[tokio::test]
    async fn errors_name_no_query_string() {
        let dir = tempfile::tempdir().unwrap();
        let covers = covers(dir.path());
        let (base, _) = serve(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
            Vec::new(),
        )
        .await;
        let err = covers
            .load(&format!("{base}/x.jpg?token=secret"))
            .await
            .unwrap_err();
        assert_eq!(err, "the cover server answered 404 Not Found");

        let err = covers
            .load("http://127.0.0.1:9/x.jpg?token=secret")
            .await
            .unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn jpeg_png_and_webp_decode() {
        let image =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(7, 9, image::Rgb([1, 2, 3])));
        for format in [
            image::ImageFormat::Jpeg,
            image::ImageFormat::Png,
            image::ImageFormat::WebP,
        ] {
            let mut bytes = io::Cursor::new(Vec::new());
            image.write_to(&mut bytes, format).expect("encode");
            let decoded = decode(bytes.get_ref()).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!((decoded.width(), decoded.height()), (7, 9), "{format:?}");
        }
    }

    #[tokio::test]
    async fn only_web_addresses_are_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let covers = covers(dir.path());
        for url in ["file:///etc/passwd", "ftp://x.test/a.jpg", "not a url"] {
            assert!(covers.load(url).await.is_err(), "{url}");
        }
    }

    #[test]
    fn a_cover_fits_its_cells_and_keeps_its_proportions() {
        let picker = halfblocks_picker();
        // Half blocks assume 10×20-pixel cells: 20×30 px fit 10×8 cells when scaled to 10 columns.
        let image = DynamicImage::ImageRgb8(image::RgbImage::new(20, 30));
        let cover = Cover::new(&picker, image, 10, 10).expect("cover");
        assert_eq!(cover.size(), (10, 8));
        assert_eq!(format!("{cover:?}"), "Cover(10x8)");

        let same = cover.clone();
        assert_eq!(cover, same);
        let image = DynamicImage::ImageRgb8(image::RgbImage::new(20, 30));
        let other = Cover::new(&picker, image, 10, 10).unwrap();
        assert_ne!(cover, other);

        let wide = DynamicImage::ImageRgb8(image::RgbImage::new(400, 100));
        let (w, h) = Cover::new(&picker, wide, 6, 6).unwrap().size();
        assert!(w <= 6 && h <= 6, "{w}x{h}");

        let empty = DynamicImage::ImageRgb8(image::RgbImage::new(0, 0));
        assert!(Cover::new(&picker, empty, 10, 10).is_err());
        let image = DynamicImage::ImageRgb8(image::RgbImage::new(2, 2));
        assert!(Cover::new(&picker, image, 0, 10).is_err());
    }

    #[test]
    fn a_cover_renders_from_a_shared_reference() {
        let picker = halfblocks_picker();
        let image =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(20, 40, image::Rgb([255, 0, 0])));
        let cover = Cover::new(&picker, image, 4, 4).unwrap();
        let backend = ratatui::backend::TestBackend::new(8, 6);
        let mut terminal = ratatui::Terminal::new(backend).unwrap();
        terminal
            .draw(|f| cover.render(f, Rect::new(1, 1, 6, 5)))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let red = ratatui::style::Color::Rgb(255, 0, 0);
        assert_ne!(buffer[(0, 0)].bg, red, "outside the area");
        assert_eq!(buffer[(1, 1)].bg, red, "the cover is drawn");
        assert_eq!(buffer[(4, 4)].bg, red, "all of it");
        assert_ne!(buffer[(5, 5)].bg, red, "and no more");
        // Too small an area draws nothing.
        terminal
            .draw(|f| cover.render(f, Rect::new(0, 0, 1, 1)))
            .unwrap();
        assert_ne!(terminal.backend().buffer()[(0, 0)].bg, red);
    }

    #[test]
    fn covers_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Cover>();
        send_sync::<Covers>();
    }
}
