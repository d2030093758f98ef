package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three masters and no replicas on loopback
// ports, made with redis-cli --cluster create.
type Cluster struct {
	t testing.TB
	// Nodes are the servers, one per master.
	Nodes []*Server
	// Addrs are their addresses.
	Addrs []string
}

// StartCluster starts a 3-master cluster and waits until it serves every
// slot. The servers stop when the test ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	Require(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli is needed to create a cluster: %v", err)
	}
	c := &Cluster{t: t}
	for range 3 {
		s := &Server{t: t, bin: Require(t), dir: t.TempDir(),
			args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"}}
		s.Addr = fmt.Sprintf("127.0.0.1:%d", freePort(t, true))
		t.Cleanup(s.Kill)
		if err := s.Restart(); err != nil {
			t.Fatal(err)
		}
		c.Nodes, c.Addrs = append(c.Nodes, s), append(c.Addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitOK(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Client returns a new cluster client, closed when the test ends.
func (c *Cluster) Client() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	c.t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// waitOK waits until every node reports cluster_state:ok.
func (c *Cluster) waitOK() error {
	deadline := time.Now().Add(startTimeout)
	for _, addr := range c.Addrs {
		cl := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, err := cl.ClusterInfo(context.Background()).Result()
			if err == nil && isOK(info) {
				break
			}
			if time.Now().After(deadline) {
				_ = cl.Close()
				return fmt.Errorf("redistest: cluster node %s not ready: %v %q", addr, err, info)
			}
			time.Sleep(20 * time.Millisecond) // slots propagate over the cluster bus: nothing to wait on
		}
		_ = cl.Close()
	}
	return nil
}
