package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// contenderEnv carries a contenderConfig (JSON) to a re-executed test binary, which then runs as one glmd-like
// process taking part in the election instead of running tests.
const contenderEnv = "GLMD_DISCOVERY_CONTENDER"

// actionEvery is how often a contender that leads records a leader action.
const actionEvery = 20 * time.Millisecond

// contenderConfig is what a contender process needs.
type contenderConfig struct {
	Address   string
	Node      string
	Actions   string // file the leader actions are appended to: "<token> <unix ns> <node>" per line
	CheckTTL  time.Duration
	LockDelay time.Duration
}

// contenderMain runs one contender until SIGTERM: it registers the node and one worker instance, heartbeats like
// glmd's main loop, and while it leads appends a line to the action file every actionEvery, each only after
// Leading said yes. It returns the process's exit code.
func contenderMain() int {
	var cc contenderConfig
	if err := json.Unmarshal([]byte(os.Getenv(contenderEnv)), &cc); err != nil {
		fmt.Fprintln(os.Stderr, "contender: bad config:", err)
		return 2
	}
	actions, err := os.OpenFile(cc.Actions, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "contender:", err)
		return 2
	}
	defer actions.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", cc.Node)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	var c Client
	var mu sync.Mutex // one action line at a time, even across a resumption
	lead := func(ctx context.Context, token uint64) {
		tick := time.NewTicker(actionEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			mu.Lock()
			if ctx.Err() == nil && c.Leading(token) {
				fmt.Fprintf(actions, "%d %d %s\n", token, time.Now().UnixNano(), cc.Node)
			}
			mu.Unlock()
		}
	}
	c, err = New(Config{Address: cc.Address, NodeName: cc.Node, Version: "test", CheckTTL: cc.CheckTTL,
		LockDelay: cc.LockDelay, AdvertiseAddress: "127.0.0.1"},
		Options{Logger: log, OnLeader: lead, OnEvent: func(ev Event) {
			log.Info("event", "kind", ev.Kind, "leader", ev.Leader, "token", ev.Token, "reason", ev.Reason)
		}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "contender:", err)
		return 2
	}
	c.SetInstance(Instance{Task: "web", Port: 8080, State: "running", Ready: true, Message: "serving"})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(c.HeartbeatInterval())
		defer tick.Stop()
		for {
			c.Heartbeat()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	err = c.Run(ctx)
	wg.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, "contender:", err)
		return 1
	}
	log.Info("contender stopped")
	return 0
}
