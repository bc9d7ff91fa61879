package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/open-autoglm/glmd/discovery"
	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/gpu"
	"github.com/open-autoglm/glmd/internal/version"
	"github.com/open-autoglm/glmd/supervisor"
)

// discoverySyncEvery is the backstop of the registration sync; state
// changes sync at once.
const discoverySyncEvery = 5 * time.Second

// setupDiscovery builds the Consul client ([consul] enabled) or the
// standalone one, with which the agent is its own scheduler.
func (a *Agent) setupDiscovery() error {
	opts := discovery.Options{OnLeader: a.onLeader, OnEvent: a.onDiscoveryEvent, Logger: a.log}
	if a.deps.Discovery != nil {
		a.disc = a.deps.Discovery(opts)
		return nil
	}
	c := a.cfg.Consul
	if !c.Enabled || a.cfg.Dev {
		a.disc = discovery.NewStandalone(a.cfg.NodeName, opts)
		return nil
	}
	var token string
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return fmt.Errorf("[consul] token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	disc, err := discovery.New(discovery.Config{
		Address: c.Address, Token: token, Datacenter: c.Datacenter,
		TLS:      discovery.TLSConfig{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile},
		KVPrefix: c.KVPrefix, ServicePrefix: c.ServicePrefix, NodeName: a.cfg.NodeName,
		Labels: c.Labels, Version: version.Version, CheckTTL: c.CheckTTL, LockDelay: c.LockDelay,
		MinToken: a.savedToken(),
	}, opts)
	if err != nil {
		return fmt.Errorf("[consul]: %w", err)
	}
	a.disc = disc
	return nil
}

// usesConsul says whether discovery talks to Consul (or a test's fake),
// rather than standing alone.
func (a *Agent) usesConsul() bool {
	return a.deps.Discovery != nil || (a.cfg.Consul.Enabled && !a.cfg.Dev)
}

// tokenFile keeps the highest fencing token this node held, so that its
// tokens keep growing across restarts of glmd and of Consul.
func (a *Agent) tokenFile() string { return filepath.Join(a.cfg.StateDir, "leader-token") }

func (a *Agent) savedToken() uint64 {
	b, err := os.ReadFile(a.tokenFile())
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// onLeader runs while this agent holds the scheduler role; ctx ends the
// moment the role is lost or suspended. The fleet scheduler's work comes
// later; today the role runs the scheduled tasks with scope = "fleet".
func (a *Agent) onLeader(ctx context.Context, token uint64) {
	if token > a.savedToken() {
		if err := os.WriteFile(a.tokenFile(), []byte(strconv.FormatUint(token, 10)+"\n"), 0o644); err != nil {
			a.log.Warn("save the fencing token", "err", err)
		}
	}
	a.leading.Store(token)
	a.updateFleetCron()
	<-ctx.Done()
	a.leading.Store(0)
	a.updateFleetCron()
}

// updateFleetCron suspends or resumes the scheduled tasks with scope =
// "fleet": they run on the leader only.
func (a *Agent) updateFleetCron() {
	a.mu.Lock()
	var cts []*cronTask
	for _, t := range a.tasks {
		if t.cron != nil && t.spec.Cron.Scope == config.CronFleet {
			cts = append(cts, t.cron)
		}
	}
	a.mu.Unlock()
	for _, ct := range cts {
		ct.mu.Lock()
		spec := ct.spec
		ct.mu.Unlock()
		if err := ct.setSpec(spec); err != nil {
			a.log.Warn("update fleet task", "task", spec.Name, "err", err)
		}
	}
}

func (a *Agent) onDiscoveryEvent(e discovery.Event) {
	msg := e.Kind.String()
	switch {
	case e.Leader != "" && e.Token != 0:
		msg += fmt.Sprintf(": %s (token %d)", e.Leader, e.Token)
	case e.Leader != "":
		msg += ": " + e.Leader
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	a.log.Info("discovery: " + msg)
	a.publish(api.Event{Time: e.Time, Type: "discovery", Instance: -1, Message: msg})
}

// syncDiscovery hands discovery the instances as they are now and the
// node's GPU counts; discovery pushes only what changed.
func (a *Agent) syncDiscovery() {
	type row struct {
		t   *task
		in  *instance
		svc *config.ServiceInstance
	}
	var rows []row
	a.mu.Lock()
	for _, t := range a.tasks {
		for _, in := range t.instances {
			if in.svc != nil {
				rows = append(rows, row{t, in, in.svc})
			}
		}
	}
	a.mu.Unlock()
	list := make([]discovery.Instance, 0, len(rows))
	for _, r := range rows {
		st := r.in.runner.Status()
		list = append(list, discovery.Instance{
			Task: r.t.spec.Name, Index: r.in.index, Name: r.svc.Name, Port: r.svc.Port,
			Tags: r.svc.Tags, Meta: r.svc.Meta, GPUs: st.Devices, State: st.State.String(),
			Ready: st.Ready, Starting: st.State == supervisor.StateStarting || (st.State == supervisor.StateRunning && !st.WasReady),
			Message: st.Message,
		})
	}
	a.disc.Sync(list)
	a.disc.SetNodeMeta(a.gpuMeta())
}

// gpuMeta is what the node's glmd service says about its GPUs.
func (a *Agent) gpuMeta() map[string]string {
	st := a.gpus.Status()
	free := 0
	for _, s := range st {
		if len(s.Holders) == 0 && s.Health == gpu.HealthHealthy && !s.Device.MIG {
			free++
		}
	}
	meta := map[string]string{"gpu_count": strconv.Itoa(len(st)), "gpu_free": strconv.Itoa(free)}
	if len(st) > 0 {
		meta["gpu_model"] = st[0].Device.Name
	}
	return meta
}

// discoveryLoop keeps the registrations in step with the instances: at
// once after a state change (pokeDiscovery), and every few seconds.
func (a *Agent) discoveryLoop(ctx context.Context) {
	t := time.NewTicker(discoverySyncEvery)
	defer t.Stop()
	for {
		a.syncDiscovery()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.discWake:
		}
	}
}

func (a *Agent) pokeDiscovery() {
	select {
	case a.discWake <- struct{}{}:
	default:
	}
}

// Leader says who holds the fleet's scheduler role, and how discovery is.
func (a *Agent) Leader(context.Context) api.LeaderInfo {
	l := a.disc.Leader()
	out := api.LeaderInfo{Mode: "consul", Holder: l.Node, Address: l.Address, Token: l.Token, Self: l.Self, Suspended: l.Suspended}
	if l.Standalone {
		out.Mode = "standalone"
	}
	if !l.Since.IsZero() {
		s := l.Since
		out.Since = &s
	}
	if h := a.disc.Health(); h.Enabled && !h.OK {
		out.Degraded = h.Reason
	}
	return out
}
