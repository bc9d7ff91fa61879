//go:build !unix

package confwatch

import "reflect"

func sameSys(a, b any) bool { return reflect.DeepEqual(a, b) }
