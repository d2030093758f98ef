package unixsock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concurry/concurry/backend"
)

// nobody is the uid and gid the tests that need another user run as.
const nobody = 65534

// TestLockFileRefusesLinks plants at PATH.lock what an attacker could: a
// symbolic link to a file (a root server with -group would re-group it), a
// dangling link (it would create the file anywhere), a hard link, and a file
// of another user. Listen refuses each, and the target is untouched.
func TestLockFileRefusesLinks(t *testing.T) {
	dir := filepath.Dir(sockPath(t))
	target := filepath.Join(dir, "secret")
	if err := os.WriteFile(target, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	gidOf := func() int {
		var st syscall.Stat_t
		if err := syscall.Stat(target, &st); err != nil {
			t.Fatal(err)
		}
		return int(st.Gid)
	}
	gid := gidOf()
	group := "0"
	if gid == 0 {
		group = "65534"
	}
	cases := map[string]func(lock string){
		"symlink":  func(lock string) { must(t, os.Symlink(target, lock)) },
		"dangling": func(lock string) { must(t, os.Symlink(filepath.Join(dir, "created"), lock)) },
		"hardlink": func(lock string) { must(t, os.Link(target, lock)) },
	}
	if os.Geteuid() == 0 {
		cases["other user"] = func(lock string) {
			must(t, os.WriteFile(lock, nil, 0o600))
			must(t, os.Chown(lock, nobody, nobody))
		}
	}
	for name, plant := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".sock")
			plant(path + ".lock")
			srv, err := Listen(path, ServerOptions{Group: group, Logger: testLogger()})
			if err == nil {
				srv.Close()
				t.Fatalf("Listen used the planted lock file")
			}
			if !strings.Contains(err.Error(), "refusing") {
				t.Errorf("the error does not say it refused the file: %v", err)
			}
		})
	}
	if got := gidOf(); got != gid {
		t.Errorf("the link's target was re-grouped from %d to %d", gid, got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "created")); !os.IsNotExist(err) {
		t.Errorf("the dangling link's target was created: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestUntrustedServer runs a server as another user at the path (a
// squatter): the client refuses it with ErrUntrustedServer, unless
// AllowServerUIDs admits that user.
func TestUntrustedServer(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root; this test needs root to run a server as another user")
		}
		t.Skip("needs root to run a server as another user")
	}
	path := sockPath(t)
	os.Chmod(filepath.Dir(path), 0o777)
	attr := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	squatter := startChild(t, exeForAll(t), "serve", attr, "CQ_SOCK="+path, "CQ_ALLOW_UID=0", "HOME=/")
	squatter.expect(t, "SERVING", 10*time.Second)
	c := dial(t, path, Options{DisableAutoHost: true})
	_, err := c.Open(context.Background(), "x", connSpecs)
	if !errors.Is(err, ErrUntrustedServer) || !errors.Is(err, backend.ErrBackendUnavailable) {
		t.Fatalf("a server of uid %d: %v, want ErrUntrustedServer", nobody, err)
	}
	trusting := dial(t, path, Options{DisableAutoHost: true, AllowServerUIDs: []int{nobody}})
	if _, err := trusting.Open(context.Background(), "x", connSpecs); err != nil {
		t.Fatalf("a server of an allowed uid: %v", err)
	}
}
