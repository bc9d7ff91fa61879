package config

import "testing"

func TestLocateKeys(t *testing.T) {
	src := `# comment with key = "x"
name = "glm"   # trailing
"quoted key" = 1
a.b.c = 2
command = [
  "x = 1",   # not a key
  """
multi = line
""",
]
note = '''
[not.a.table]
'''
env = { A = "1", "B C" = "2", D = { E = 3 } }

  [restart]
  delay = "1s"
[[arr]]
x = 1
[[arr]]
x = 2
[ "odd table" . inner ]
o = 1
"é" = 2
k = "\"" # escaped quote
after = 1
[[arr]]
h = { A = "1", B.C = 2 }
[arr.sub]
y = 3
[arr.sub.deeper]
z = 4
`
	want := map[string]position{
		"name":                    {2, 1},
		`"quoted key"`:            {3, 1},
		"a":                       {4, 1},
		"a.b":                     {4, 1},
		"a.b.c":                   {4, 1},
		"command":                 {5, 1},
		"note":                    {11, 1},
		"env":                     {14, 1},
		"env.A":                   {14, 9},
		`env."B C"`:               {14, 18},
		"env.D":                   {14, 31},
		"env.D.E":                 {14, 37},
		"restart":                 {16, 3},
		"restart.delay":           {17, 3},
		"arr":                     {18, 1},
		"arr.x":                   {19, 1},
		"arr[0]":                  {18, 1},
		"arr[0].x":                {19, 1},
		"arr[1]":                  {20, 1},
		"arr[1].x":                {21, 1},
		`"odd table"`:             {22, 1},
		`"odd table".inner`:       {22, 1},
		`"odd table".inner.o`:     {23, 1},
		`"odd table".inner."é"`:   {24, 1},
		`"odd table".inner.k`:     {25, 1},
		`"odd table".inner.after`: {26, 1},
		// [arr.sub] after [[arr]] is a table of that entry.
		"arr[2]":              {27, 1},
		"arr[2].h":            {28, 1},
		"arr[2].h.A":          {28, 7},
		"arr[2].h.B":          {28, 16},
		"arr[2].h.B.C":        {28, 16},
		"arr[2].sub":          {29, 1},
		"arr[2].sub.y":        {30, 1},
		"arr[2].sub.deeper":   {31, 1},
		"arr[2].sub.deeper.z": {32, 1},
		"arr.sub.y":           {30, 1},
	}
	got := locateKeys([]byte(src))
	for k, p := range want {
		if got[k] != p {
			t.Errorf("%s at %v, want %v", k, got[k], p)
		}
	}
	for _, k := range []string{"multi", "not", "not.a.table", "x = 1", "arr[3]", "arr[1].sub", `"odd table".inner[0]`, `"odd table"[0].inner.o`} {
		if p, ok := got[k]; ok {
			t.Errorf("%q inside a string found as a key at %v", k, p)
		}
	}
}
