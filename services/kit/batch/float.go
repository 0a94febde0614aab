package batch

import "strconv"

// SingleToDouble widens a single-precision source value (MySQL FLOAT,
// PostgreSQL real) to the double a batch carries as the shortest decimal
// that reads back as the same float32: 144.968, as the source shows it,
// not 144.96800231933594, the float32's exact binary value. A real target
// column stores the same float32 either way; a double one and an
// expression see the number the source system showed.
func SingleToDouble(f float32) float64 {
	d, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if err != nil { // ±Inf and NaN format as words ParseFloat reads back
		return float64(f)
	}
	return d
}
