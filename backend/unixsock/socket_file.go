package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// lockPath opens (creating) the lock file and takes an exclusive flock on
// it without waiting. The kernel releases the lock when the process dies.
//
// The file is opened without following a symbolic link, and must be a
// regular file of one link owned by this process's user before it is given
// the group gid (when gid ≥ 0): otherwise a link planted at the path could
// make a privileged server re-group, or create, a file anywhere.
func lockPath(path string, mode os.FileMode, gid int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, mode.Perm())
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("concurry: lock file %s is a symbolic link; refusing to follow it", path)
	}
	if err != nil {
		return nil, fmt.Errorf("concurry: lock file: %w", err)
	}
	if err := checkOwnFile(f, path, gid); err != nil {
		f.Close()
		return nil, err
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

// checkOwnFile refuses an open lock file that is not a regular file with a
// single link owned by this process's effective user, then gives it the
// group gid when gid ≥ 0.
func checkOwnFile(f *os.File, path string, gid int) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("concurry: lock file %s: %w", path, err)
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return fmt.Errorf("concurry: lock file %s is not a regular file; refusing to use it", path)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("concurry: lock file %s is owned by uid %d, not by this server's uid %d; refusing to use it",
			path, st.Uid, os.Geteuid())
	case st.Nlink != 1:
		return fmt.Errorf("concurry: lock file %s has %d hard links; refusing to use it", path, st.Nlink)
	case gid < 0 || int(st.Gid) == gid:
		return nil
	}
	if err := f.Chown(-1, gid); err != nil {
		return fmt.Errorf("concurry: lock file %s: %w", path, err)
	}
	return nil
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
	if err := chmodSocket(path, mode, gid); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// oPath is Linux's O_PATH, which package syscall does not name: an fd that
// only names a file.
const oPath = 0o10000000

// chmodSocket gives the socket just created at path its mode and group
// without following a link someone may have put in its place: it changes
// the file it opened with O_PATH|O_NOFOLLOW after checking that it is a
// socket of this process's user.
func chmodSocket(path string, mode os.FileMode, gid int) error {
	fd, err := syscall.Open(path, oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("concurry: socket %s: %w", path, err)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fmt.Errorf("concurry: socket %s: %w", path, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("concurry: %s was replaced while the server created it", path)
	}
	self := "/proc/self/fd/" + strconv.Itoa(fd) // names the inode fd opened, not the path
	if err := os.Chmod(self, mode.Perm()); err != nil {
		return fmt.Errorf("concurry: socket %s: %w", path, err)
	}
	if gid >= 0 {
		if err := os.Chown(self, -1, gid); err != nil {
			return fmt.Errorf("concurry: socket %s: %w", path, err)
		}
	}
	return nil
}
