// Command glmd is the glmd node agent: it supervises the worker processes
// described by the task files in conf.d. See DESIGN.md and docs/.
//
//	glmd [--config FILE]              run the agent
//	glmd --dev                        run with ./conf.d and ./.glmd, no root needed
//	glmd validate [--diff] [PATH...]  check task files (exit 1 with one line per error)
//	glmd version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/agent"
	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/clitext"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/version"
)

const defaultConfig = "/etc/glmd/glmd.toml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// flags are glmd's command-line settings; they override the config file.
type flags struct {
	config, confDir, socket, metrics, logLevel string
	dev, diff                                  bool
}

func run(args []string, stdout, stderr io.Writer) int {
	var f flags
	root := &cobra.Command{
		Use:           "glmd",
		Short:         "glmd supervises GPU worker processes described by task files in conf.d",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, &f)
			if err != nil {
				// A bad glmd.toml does not get better by restarting:
				// the unit's RestartPreventExitStatus stops the loop.
				fmt.Fprintln(stderr, "glmd:", err)
				return exitCode(exitConfig)
			}
			return serve(cfg, stderr)
		},
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&f.config, "config", defaultConfig, "agent config file")
	pf.BoolVar(&f.dev, "dev", false, "development mode: conf_dir ./conf.d, state, logs and socket under ./.glmd, no root, no config file")
	pf.StringVar(&f.confDir, "conf-dir", "", "override conf_dir")
	pf.StringVar(&f.socket, "socket", "", "override socket")
	pf.StringVar(&f.metrics, "metrics-listen", "", `override [metrics] listen ("off" turns metrics off)`)
	pf.StringVar(&f.logLevel, "log-level", "", "override log_level (debug, info, warn, error)")

	validate := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check the agent config and task files; exit 1 with one line per error",
		Long: "Without PATH, checks the config file and every task file in its conf_dir.\n" +
			"With --diff, also asks the running agent what a reload would change.",
		RunE: func(cmd *cobra.Command, paths []string) error {
			return validateCmd(cmd, &f, paths)
		},
	}
	validate.Flags().BoolVar(&f.diff, "diff", false, "print what a reload of conf_dir would change in the running agent")
	root.AddCommand(validate, &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
		},
	})
	if err := root.Execute(); err != nil {
		var ce exitCode
		if errors.As(err, &ce) {
			return int(ce)
		}
		fmt.Fprintln(stderr, "glmd:", err)
		return 1
	}
	return 0
}

// exitCode ends the program with a status and no further message.
type exitCode int

// exitConfig is the status of a glmd that cannot start because of its
// config: EX_CONFIG of sysexits.h, which systemd units can exclude from
// restarts.
const exitConfig = 78

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// loadConfig reads the config file (or the dev defaults) and applies flags.
func loadConfig(cmd *cobra.Command, f *flags) (*config.Agent, error) {
	var cfg *config.Agent
	switch {
	case f.dev:
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		cfg = config.DevAgent(wd)
	default:
		var err error
		cfg, err = config.LoadAgent(f.config)
		if errors.Is(err, fs.ErrNotExist) && !cmd.Flags().Changed("config") {
			// The default path may be absent on a host set up by hand.
			cfg, err = config.DefaultAgent(), nil
		}
		if err != nil {
			return nil, err
		}
	}
	if f.confDir != "" {
		cfg.ConfDir = f.confDir
	}
	if f.socket != "" {
		cfg.Socket = f.socket
	}
	switch f.metrics {
	case "":
	case "off":
		cfg.Metrics.Listen = ""
	default:
		cfg.Metrics.Listen = f.metrics
	}
	if f.logLevel != "" {
		cfg.LogLevel = f.logLevel
	}
	return cfg, nil
}

// serve runs the agent until SIGTERM or SIGINT; SIGHUP reloads conf_dir.
func serve(cfg *config.Agent, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	interval, _ := daemon.SdWatchdogEnabled(false)
	a := agent.New(cfg, agent.Deps{
		Log:      log,
		Watchdog: interval,
		Notify: func(state string) {
			if _, err := daemon.SdNotify(false, state); err != nil {
				log.Warn("sd_notify", "err", err)
			}
		},
	})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			log.Info("SIGHUP: reloading conf_dir")
			if _, err := a.Reload(ctx, false); err != nil {
				log.Error("reload", "err", err)
			}
		}
	}()
	return a.Run(ctx)
}

func newLogger(cfg *config.Agent, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// validateCmd checks the config and task files, printing one line per error.
func validateCmd(cmd *cobra.Command, f *flags, paths []string) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.diff && len(paths) > 0 {
		return errors.New("validate --diff compares conf_dir with the running agent; drop the PATH arguments")
	}
	cfg, err := loadConfig(cmd, f)
	if err != nil {
		fmt.Fprintln(errOut, err)
		return exitCode(1)
	}
	opts := config.LoadOptions{Node: cfg.NodeName, RequireRootOwned: os.Geteuid() == 0,
		Note: func(n *config.FileError) { fmt.Fprintln(out, "note:", n.Error()) }}
	var (
		tasks []*config.Task
		errs  []*config.FileError
		where = cfg.ConfDir
	)
	if len(paths) > 0 {
		tasks, errs = config.LoadFiles(paths, opts)
		where = fmt.Sprintf("%d files", len(paths))
	} else {
		if _, err := os.Stat(cfg.ConfDir); err != nil {
			fmt.Fprintf(errOut, "conf_dir %s: %v\n", cfg.ConfDir, err)
			return exitCode(1)
		}
		tasks, errs = config.LoadTasks(os.DirFS(cfg.ConfDir), opts)
		for _, e := range errs {
			if e.File != "" && e.File[0] != '/' {
				e.File = cfg.ConfDir + "/" + e.File
			}
		}
	}
	for _, e := range errs {
		fmt.Fprintln(errOut, e.Error())
	}
	if len(errs) == 0 {
		fmt.Fprintf(out, "%s: %d tasks, all valid\n", where, len(tasks))
	}
	if f.diff {
		plan, err := api.NewClient(cfg.Socket).Reload(cmd.Context(), true)
		if err != nil {
			fmt.Fprintln(errOut, err)
			return exitCode(1)
		}
		if err := clitext.WritePlan(out, plan); err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		return exitCode(1)
	}
	return nil
}
