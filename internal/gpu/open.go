package gpu

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Values of [gpu] provider.
const (
	ProviderAuto   = "auto"   // NVML when it initialises, else the static list when there is one, else none
	ProviderNVML   = "nvml"   // NVML, or fail
	ProviderStatic = "static" // the [[gpu.devices]] list
	ProviderNone   = "none"   // no GPUs
)

// Open returns the Inventory that [gpu] provider asks for ("" means
// "auto"). static is the [[gpu.devices]] list. Under "auto", a host
// without NVML is not an error: Open logs one line at info saying why
// (reason="nvml init: ERROR_LIBRARY_NOT_FOUND") and returns the static
// inventory, or None.
func Open(provider string, static []Device, log *slog.Logger) (Inventory, error) {
	return open(provider, static, log, OpenNVML)
}

// open is Open with the NVML opener as a parameter, for tests.
func open(provider string, static []Device, log *slog.Logger, openNVML func(*slog.Logger) (Inventory, error)) (Inventory, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch provider {
	case ProviderAuto, "":
		inv, err := openNVML(log)
		if err == nil {
			if len(static) > 0 {
				log.Info("gpu inventory from NVML: the static [[gpu.devices]] list is not used", "provider", ProviderAuto)
			}
			return inv, nil
		}
		if !errors.Is(err, ErrNoNVML) {
			return nil, fmt.Errorf("gpu provider %q: %w", ProviderAuto, err)
		}
		if len(static) > 0 {
			inv, serr := NewStatic(static)
			if serr != nil {
				return nil, fmt.Errorf("gpu provider %q: NVML is not available (%s), and %w", ProviderAuto, noNVMLReason(err), serr)
			}
			log.Info("gpus from the static [[gpu.devices]] list: NVML is not available",
				"provider", ProviderAuto, "gpus", len(static), "reason", noNVMLReason(err))
			return inv, nil
		}
		log.Info("no GPUs: NVML is not available", "provider", ProviderAuto, "reason", noNVMLReason(err))
		return None(), nil
	case ProviderNVML:
		inv, err := openNVML(log)
		if err != nil {
			return nil, fmt.Errorf("gpu provider %q: %w (check that nvidia-smi works; "+
				"or set [gpu] provider = \"auto\" to run without GPUs, or \"static\" with [[gpu.devices]])", ProviderNVML, err)
		}
		return inv, nil
	case ProviderStatic:
		if len(static) == 0 {
			return nil, fmt.Errorf("gpu provider %q: no [[gpu.devices]] listed in the agent config", ProviderStatic)
		}
		inv, err := NewStatic(static)
		if err != nil {
			return nil, fmt.Errorf("gpu provider %q: %w", ProviderStatic, err)
		}
		return inv, nil
	case ProviderNone:
		return None(), nil
	}
	return nil, fmt.Errorf("gpu provider %q: unknown, want %q, %q, %q or %q",
		provider, ProviderAuto, ProviderNVML, ProviderStatic, ProviderNone)
}

// noNVMLReason says briefly why NVML is not available: the call and
// NVML's code ("nvml init: ERROR_LIBRARY_NOT_FOUND"), else the error
// without the ErrNoNVML prefix.
func noNVMLReason(err error) string {
	if nerr, ok := errors.AsType[*NVMLError](err); ok {
		return nerr.short()
	}
	if reason, ok := strings.CutPrefix(err.Error(), ErrNoNVML.Error()+": "); ok {
		return reason
	}
	return err.Error()
}
