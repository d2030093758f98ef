package unixsock

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"
)

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
	cred, err := peerCred(c)
	if err != nil {
		return nil, false, err
	}
	ok := slices.Contains(a.uids, int(cred.Uid)) || slices.Contains(a.gids, int(cred.Gid))
	return cred, ok, nil
}

// checkServer is the client's side of the check: it refuses a server that
// runs as another user than this process's effective uid, root, or one of
// allowed, with an error matching ErrUntrustedServer.
func checkServer(c *net.UnixConn, allowed []int) error {
	cred, err := peerCred(c)
	if err != nil {
		return fmt.Errorf("reading the server's credentials: %w", err)
	}
	uid := int(cred.Uid)
	if uid == os.Geteuid() || uid == 0 || slices.Contains(allowed, uid) {
		return nil
	}
	return fmt.Errorf("%w: the server (pid %d) runs as uid %d; Options.AllowServerUIDs can admit it",
		ErrUntrustedServer, cred.Pid, uid)
}

// peerCred returns the credentials (SO_PEERCRED) of the process at the other
// end of c, as they were when the connection was made.
func peerCred(c *net.UnixConn) (*syscall.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err == nil {
		err = cerr
	}
	return cred, err
}
