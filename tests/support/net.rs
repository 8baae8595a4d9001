//! Network plumbing shared by the fake servers: a listener that can be closed and reopened on
//! the same port, and connections that die when the server "goes down".

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Gate {
    pub listener: Option<TcpListener>,
    pub accept_waker: Option<Waker>,
    pub closed: bool,
}

pub struct Net {
    pub addr: SocketAddr,
    pub handle: tokio::runtime::Handle,
    pub gate: Mutex<Gate>,
    /// Bumped on every go_down; connections born in an older epoch are dead.
    pub epoch: AtomicU64,
    pub conns: Mutex<HashMap<u64, Waker>>,
    pub next_conn: AtomicU64,
}

impl Net {
    /// Stop listening (the port refuses connections) and kill open connections.
    pub fn down(&self, forever: bool) {
        {
            let mut g = lock(&self.gate);
            g.listener = None;
            g.closed |= forever;
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        let wakers: Vec<Waker> = lock(&self.conns).drain().map(|(_, w)| w).collect();
        for w in wakers {
            w.wake();
        }
    }

    pub fn up(&self) {
        let mut g = lock(&self.gate);
        if g.closed || g.listener.is_some() {
            return;
        }
        let _rt = self.handle.enter();
        let std_listener = std::net::TcpListener::bind(self.addr)
            .unwrap_or_else(|e| panic!("fake server: go_up: cannot rebind {}: {e}", self.addr));
        std_listener.set_nonblocking(true).expect("set_nonblocking");
        g.listener = Some(TcpListener::from_std(std_listener).expect("register listener"));
        if let Some(w) = g.accept_waker.take() {
            w.wake();
        }
    }
}

pub struct FakeListener {
    pub net: Arc<Net>,
}

impl axum::serve::Listener for FakeListener {
    type Io = FakeIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (FakeIo, SocketAddr) {
        loop {
            let net = &self.net;
            let res = poll_fn(|cx| {
                let mut g = lock(&net.gate);
                g.accept_waker = Some(cx.waker().clone());
                match &g.listener {
                    Some(l) => l.poll_accept(cx).map(|r| {
                        let epoch = net.epoch.load(Ordering::SeqCst);
                        r.map(|(s, a)| (s, a, epoch))
                    }),
                    None => Poll::Pending,
                }
            })
            .await;
            match res {
                Ok((stream, addr, epoch)) => {
                    let _ = stream.set_nodelay(true);
                    let io = FakeIo {
                        inner: stream,
                        born: epoch,
                        id: net.next_conn.fetch_add(1, Ordering::SeqCst),
                        net: net.clone(),
                    };
                    return (io, addr);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.net.addr)
    }
}

pub struct FakeIo {
    pub inner: TcpStream,
    pub born: u64,
    pub id: u64,
    pub net: Arc<Net>,
}

impl FakeIo {
    pub fn dead(&self) -> bool {
        self.net.epoch.load(Ordering::SeqCst) != self.born
    }
}

impl Drop for FakeIo {
    fn drop(&mut self) {
        lock(&self.net.conns).remove(&self.id);
    }
}

impl AsyncRead for FakeIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        lock(&self.net.conns).insert(self.id, cx.waker().clone());
        if self.dead() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FakeIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.dead() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How a fake serving from a thread of its own is stopped: the sender ends its runtime, then
/// the thread is joined.
pub type Background = (oneshot::Sender<()>, std::thread::JoinHandle<()>);

/// Starts a fake with `start` on a thread of its own with a private runtime (for sync
/// `#[test]`s); it serves until the returned [`Background`] is used to stop it.
pub fn in_background<T, Fut>(name: &str, start: fn() -> Fut) -> (T, Background)
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let thread_name = name.to_string();
    let thread = std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("{thread_name}: runtime: {e}"));
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let fake = rt.block_on(start());
            if tx.send((fake, stop_tx)).is_err() {
                return;
            }
            rt.block_on(async {
                let _ = stop_rx.await;
            });
            // Dropping the runtime cancels every connection task at once.
            drop(rt);
        })
        .unwrap_or_else(|e| panic!("{name}: spawn thread: {e}"));
    let (fake, stop_tx) = rx
        .recv()
        .unwrap_or_else(|_| panic!("{name}: background start failed"));
    (fake, (stop_tx, thread))
}
