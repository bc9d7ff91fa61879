package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
)

// maxRendered bounds one rendered value: Linux refuses a single argv or
// environment string above 128 KiB (MAX_ARG_STRLEN) anyway.
const maxRendered = 128 << 10

var varNames = []string{"Name", "Instance", "Node", "Port", "Ports"}

// parseTemplate parses one templated value. Unknown map keys are errors
// (missingkey=error), so {{.Ports.x}} never renders as "<no value>".
func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, cleanTemplateError(name, err)
	}
	return t, nil
}

// renderTemplate executes a parsed template with v.
func renderTemplate(t *template.Template, v Vars) (string, error) {
	var b limitedBuilder
	if err := t.Execute(&b, v); err != nil {
		if errors.Is(err, errTooLong) {
			return "", fmt.Errorf("renders to more than %d KiB", maxRendered>>10)
		}
		return "", cleanTemplateError(t.Name(), err)
	}
	return b.String(), nil
}

// render parses and executes text in one step.
func render(name, text string, v Vars) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := parseTemplate(name, text)
	if err != nil {
		return "", err
	}
	return renderTemplate(t, v)
}

// templateLineRE matches the "1:" or "1:3:" text/template puts first.
var templateLineRE = regexp.MustCompile(`^\d+(:\d+)?: `)

var errTooLong = errors.New("template output too long")

type limitedBuilder struct{ strings.Builder }

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxRendered {
		return 0, errTooLong
	}
	return b.Builder.Write(p)
}

// cleanTemplateError drops text/template's "template: NAME:" prefix: the
// FileError already names the key.
func cleanTemplateError(name string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	msg = strings.TrimPrefix(msg, name+":")
	if i := strings.Index(msg, fmt.Sprintf("executing %q at ", name)); i >= 0 {
		msg = msg[i+len(fmt.Sprintf("executing %q at ", name)):]
	}
	msg = templateLineRE.ReplaceAllString(strings.TrimSpace(msg), "")
	return fmt.Errorf("bad template: %s", msg)
}

// templateUse is what a template refers to, from its parse tree.
type templateUse struct {
	port     bool     // {{.Port}}
	ports    []string // {{.Ports.name}}, {{index .Ports "name"}}
	allPorts bool     // {{.Ports}} as a whole
	unknown  []string // {{.Nmae}}: fields Vars does not have
	wholeDot bool     // {{.}} or {{$}} at the top: all of Vars, printed as a Go struct
	disallow string   // a construct task templates may not use
}

// inspectTemplate walks t's parse tree. Templates are expressions, not
// programs: range, define and template are refused, so that rendering a
// value takes time in proportion to its length (a {{range}} over a large
// number would stall validation, recursive templates blow up).
func inspectTemplate(t *template.Template) templateUse {
	var u templateUse
	if len(t.Templates()) > 1 {
		u.disallow = "define"
	}
	if t.Tree != nil && t.Tree.Root != nil {
		u.walk(t.Tree.Root, true)
	}
	return u
}

// walk visits n; top says whether dot is still the Vars (not inside with).
func (u *templateUse) walk(n parse.Node, top bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			u.walk(c, top)
		}
	case *parse.ActionNode:
		u.walk(n.Pipe, top)
	case *parse.IfNode:
		u.walk(n.Pipe, top)
		u.walk(n.List, top)
		u.walk(n.ElseList, top)
	case *parse.WithNode:
		u.walk(n.Pipe, top)
		u.walk(n.List, false)
		u.walk(n.ElseList, top)
	case *parse.RangeNode:
		u.disallow = "range"
	case *parse.TemplateNode:
		u.disallow = "template"
	case *parse.BreakNode, *parse.ContinueNode:
		u.disallow = "range"
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			u.walk(c, top)
		}
	case *parse.CommandNode:
		// {{index .Ports "name"}}
		if len(n.Args) >= 3 {
			if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "index" {
				if f, ok := n.Args[1].(*parse.FieldNode); ok && top && len(f.Ident) == 1 && f.Ident[0] == "Ports" {
					if s, ok := n.Args[2].(*parse.StringNode); ok {
						u.ports = append(u.ports, s.Text)
					}
				}
			}
		}
		for _, a := range n.Args {
			u.walk(a, top)
		}
	case *parse.DotNode:
		if top {
			u.wholeDot = true
		}
	case *parse.FieldNode:
		if top {
			u.field(n.Ident)
		}
	case *parse.VariableNode:
		switch {
		case len(n.Ident) > 1 && n.Ident[0] == "$":
			u.field(n.Ident[1:])
		case len(n.Ident) == 1 && n.Ident[0] == "$":
			u.wholeDot = true
		}
	case *parse.ChainNode:
		u.walk(n.Node, top)
	}
}

func (u *templateUse) field(ident []string) {
	switch ident[0] {
	case "Port":
		u.port = true
	case "Ports":
		if len(ident) > 1 {
			u.ports = append(u.ports, ident[1])
		} else {
			u.allPorts = true
		}
	case "Name", "Instance", "Node":
	default:
		u.unknown = append(u.unknown, ident[0])
	}
}

// checkTemplate parses text and says what is wrong with it for a task that
// declares ports (port: whether it has a port). allowPorts is false for
// values read at load time (env_file paths), when ports are not known yet.
func checkTemplate(name, text string, port bool, ports map[string]int, allowPorts bool) (*template.Template, error) {
	t, err := parseTemplate(name, text)
	if err != nil {
		return nil, err
	}
	u := inspectTemplate(t)
	if u.disallow != "" {
		return nil, fmt.Errorf("{{%s}} is not supported in task templates (they are values, not programs)", u.disallow)
	}
	if len(u.unknown) > 0 {
		f := u.unknown[0]
		hint := ""
		if best := closest(f, varNames); best != "" {
			hint = fmt.Sprintf("did you mean {{.%s}}? ", best)
		}
		return nil, fmt.Errorf("{{.%s}} is not a template variable (%savailable: .Name, .Instance, .Node, .Port, .Ports.NAME)", f, hint)
	}
	if u.wholeDot {
		return nil, fmt.Errorf("{{.}} is not a value here (use .Name, .Instance, .Node, .Port or .Ports.NAME)")
	}
	if !allowPorts && (u.port || u.allPorts || len(u.ports) > 0) {
		return nil, fmt.Errorf("{{.Port}} and {{.Ports}} cannot be used here: env files are read when the task file is loaded, before ports are assigned")
	}
	if u.port && !port {
		return nil, fmt.Errorf("{{.Port}} is used but the task declares no port (set port = 8000, or port = 0 to let glmd pick one)")
	}
	for _, p := range u.ports {
		if _, ok := ports[p]; !ok {
			return nil, fmt.Errorf("{{.Ports.%s}} is used but [ports] declares no %q (declared: %s)", p, p, declared(ports))
		}
	}
	return t, nil
}

func declared(ports map[string]int) string {
	if len(ports) == 0 {
		return "none"
	}
	names := make([]string, 0, len(ports))
	for n := range ports {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
