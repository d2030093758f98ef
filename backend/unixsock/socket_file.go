package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// lockPath opens (creating) the lock file and takes an exclusive flock on
// it without waiting. The kernel releases the lock when the process dies.
func lockPath(path string, mode os.FileMode, gid int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, mode)
	if err != nil {
		return nil, err
	}
	if gid >= 0 {
		_ = f.Chown(-1, gid)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked", ErrServerRunning, path)
		}
		return nil, fmt.Errorf("concurry: lock %s: %w", path, err)
	}
	return f, nil
}

// listenSocket creates the socket at path with the given mode and group. It
// must be called with the lock held: any socket already there is stale.
func listenSocket(path string, mode os.FileMode, gid int) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("concurry: %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	err = os.Chmod(path, mode)
	if err == nil && gid >= 0 {
		err = os.Chown(path, -1, gid)
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
