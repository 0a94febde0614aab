package extract

import (
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"
)

// asciiEncoding is strict 7-bit ASCII, as exports from old systems declare
// it: a byte from 0x80 up is no character, so its field is quarantined
// like any byte that does not decode, instead of being guessed at.
type asciiEncoding struct{}

func (asciiEncoding) NewDecoder() *encoding.Decoder {
	return &encoding.Decoder{Transformer: asciiDecoder{}}
}

func (asciiEncoding) NewEncoder() *encoding.Encoder {
	return &encoding.Encoder{Transformer: asciiEncoder{}}
}

type asciiDecoder struct{ transform.NopResetter }

// Transform copies ASCII and writes U+FFFD for any other byte, the way
// golang.org/x/text decoders mark what they cannot decode.
func (asciiDecoder) Transform(dst, src []byte, _ bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		c := src[nSrc]
		if c < utf8.RuneSelf {
			if nDst >= len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			dst[nDst] = c
			nDst++
		} else {
			if nDst+len(replacement) > len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			nDst += copy(dst[nDst:], replacement)
		}
		nSrc++
	}
	return nDst, nSrc, nil
}

type asciiEncoder struct{ transform.NopResetter }

func (asciiEncoder) Transform(dst, src []byte, _ bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		c := src[nSrc]
		if c >= utf8.RuneSelf {
			return nDst, nSrc, encoding.ErrInvalidUTF8 // no such character in ASCII
		}
		if nDst >= len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		dst[nDst] = c
		nDst++
		nSrc++
	}
	return nDst, nSrc, nil
}
