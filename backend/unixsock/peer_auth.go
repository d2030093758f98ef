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
