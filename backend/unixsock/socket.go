package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
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

// authorizer admits peers by the credentials SO_PEERCRED reports.
type authorizer struct {
	uids []int
	gids []int
}

// newAuthorizer admits the server's own uid and the configured ids; it
// returns the gid of opts.Group, -1 when none is set.
func newAuthorizer(opts ServerOptions) (authorizer, int, error) {
	a := authorizer{uids: append([]int{os.Geteuid()}, opts.AllowUIDs...), gids: slices.Clone(opts.AllowGIDs)}
	if opts.Group == "" {
		return a, -1, nil
	}
	gid, err := strconv.Atoi(opts.Group)
	if err != nil {
		g, lerr := user.LookupGroup(opts.Group)
		if lerr != nil {
			return a, -1, fmt.Errorf("concurry: socket group: %w", lerr)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	a.gids = append(a.gids, gid)
	return a, gid, nil
}

// check returns the peer's credentials and whether they are admitted.
func (a authorizer) check(c *net.UnixConn) (*syscall.Ucred, bool, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, false, err
	}
	var cred *syscall.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, err
	}
	ok := slices.Contains(a.uids, int(cred.Uid)) || slices.Contains(a.gids, int(cred.Gid))
	return cred, ok, nil
}
