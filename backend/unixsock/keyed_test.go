package unixsock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// keyedCalls is each identity's budget in the keyed children's Keyed.
const keyedCalls = 40

var identities = []string{"alice", "bob", "carol"}

func keyedOptions(c *Client) concurry.KeyedOptions {
	return concurry.KeyedOptions{
		Backend: c, Name: "tenants",
		Limits: []concurry.Limit{concurry.CallLimit{Window: 1000 * time.Hour, Capacity: keyedCalls}},
	}
}

// childKeyed takes every identity's calls it can through a Keyed on the
// shared server, forgetting its sets of the identities (Sweep) between
// rounds, and reports how many calls of each it was granted.
func childKeyed() error {
	c, err := childClient()
	if err != nil {
		return err
	}
	defer c.Close()
	k, err := concurry.NewKeyed(keyedOptions(c))
	if err != nil {
		return err
	}
	defer k.Close()
	granted := map[string]int{}
	for open := true; open; {
		open = false
		for _, id := range identities {
			a, err := k.TryAcquire(context.Background(), id, nil)
			switch {
			case err == nil:
				granted[id]++
				open = true
				a.Release()
			case !errors.Is(err, concurry.ErrWouldBlock):
				return err
			}
		}
		k.Sweep(context.Background()) // idle identities are forgotten here; the server keeps their spent budgets
	}
	out, _ := json.Marshal(granted)
	fmt.Printf("GRANTED %s\n", out)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// TestKeyedAcrossProcesses: two processes share the budget of every
// identity of a Keyed through the server: together they are granted
// exactly each identity's calls. The server keeps an identity's set after
// every process forgot its own (its budget is spent, so forgetting it would
// reset it), and a third process finds the budget spent.
func TestKeyedAcrossProcesses(t *testing.T) {
	srv := startServer(t, ServerOptions{IdleCheck: 10 * time.Millisecond})
	var kids []*child
	for range 2 {
		kids = append(kids, startChild(t, "", "keyed", nil, "CQ_SOCK="+srv.Path(), "CQ_NOHOST=1"))
	}
	total := map[string]int{}
	for _, kid := range kids {
		var granted map[string]int
		if err := json.Unmarshal([]byte(kid.expect(t, "GRANTED ", 30*time.Second)), &granted); err != nil {
			t.Fatal(err)
		}
		for id, n := range granted {
			total[id] += n
		}
		t.Logf("a process was granted %v", granted)
	}
	for _, kid := range kids {
		if err := kid.stop(false); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	for _, id := range identities {
		if total[id] != keyedCalls {
			t.Errorf("%s: %d calls granted over both processes, want exactly %d", id, total[id], keyedCalls)
		}
	}
	if n := srv.Sets(); n != len(identities) {
		t.Errorf("the server holds %d sets after both processes left, want the %d spent ones", n, len(identities))
	}
	k, err := concurry.NewKeyed(keyedOptions(dial(t, srv.Path(), Options{DisableAutoHost: true})))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if _, err := k.TryAcquire(context.Background(), "alice", nil); !errors.Is(err, concurry.ErrWouldBlock) {
		t.Errorf("a third process acquired from alice's spent budget: %v", err)
	}
	a, err := k.TryAcquire(context.Background(), "dave", nil)
	if err != nil {
		t.Fatalf("a new identity: %v", err)
	}
	a.Release()
}
