//! A TCP relay from a loopback port of this network namespace to the same
//! port on loopback inside another one: how the demo's page, running in the
//! simulated laptop's namespace, becomes reachable from the host's browser.
//!
//! One thread joins the target namespace (`setns`) and opens connections
//! there on request; sockets keep the namespace they were made in, so the
//! copying threads can run anywhere. Connections are capped.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Most connections relayed at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 64;
/// A relayed connection with no data either way for this long is closed.
const IDLE: Duration = Duration::from_secs(60);

/// A running relay; stops accepting when dropped.
pub struct Relay {
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Relays `listener`'s connections to `target` inside the network
    /// namespace at `netns` (e.g. `/run/netns/NAME`).
    #[allow(unsafe_code)]
    pub fn start(listener: TcpListener, netns: &str, target: SocketAddr) -> io::Result<Relay> {
        let ns = std::fs::File::open(netns)?;
        let (ask, asked) = mpsc::channel::<mpsc::Sender<io::Result<TcpStream>>>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("relay-connect".into())
            .spawn(move || {
                // SAFETY: setns on this thread only, with a valid namespace fd.
                let joined = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                let _ = ready_tx.send(if joined == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                });
                if joined != 0 {
                    return;
                }
                for reply in asked {
                    let _ = reply.send(TcpStream::connect_timeout(&target, Duration::from_secs(5)));
                }
            })?;
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("relay thread ended"))??;

        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        listener.set_nonblocking(true)?;
        let accept_stop = stop.clone();
        std::thread::Builder::new()
            .name("relay-accept".into())
            .spawn(move || {
                while !accept_stop.load(Relaxed) {
                    let client = match listener.accept() {
                        Ok((c, _)) => c,
                        // Nothing waiting, or out of descriptors: try again soon.
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                    };
                    if active.load(Relaxed) >= MAX_CONNECTIONS {
                        drop(client);
                        continue;
                    }
                    let (tx, rx) = mpsc::channel();
                    if ask.send(tx).is_err() {
                        break;
                    }
                    let Ok(Ok(upstream)) = rx.recv() else {
                        continue;
                    };
                    let _ = client.set_nonblocking(false);
                    active.fetch_add(1, Relaxed);
                    pipe(client, upstream, active.clone());
                }
            })?;
        Ok(Relay { stop })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// Copies both ways until either side closes.
fn pipe(a: TcpStream, b: TcpStream, active: Arc<AtomicUsize>) {
    // An idle connection ends after a while, so a capped slot comes back.
    for s in [&a, &b] {
        let _ = s.set_read_timeout(Some(IDLE));
    }
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        active.fetch_sub(1, Relaxed);
        return;
    };
    let one_way = |mut from: TcpStream, mut to: TcpStream| {
        let _ = io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    };
    let up = std::thread::spawn(move || one_way(a, b));
    std::thread::spawn(move || {
        one_way(b2, a2);
        let _ = up.join();
        active.fetch_sub(1, Relaxed);
    });
}
