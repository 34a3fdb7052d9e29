package sys

import "runtime"

const runtimeGOOS = runtime.GOOS
