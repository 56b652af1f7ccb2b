// Command plot renders the CSV written by cmd/scale as one PNG with six
// panels: throughput against topics, subscribers and repliers, round trips
// against repliers, and MB/s and msgs/s against the message size, one line
// per system.
//
//	cd bench && go run ./cmd/scale -o scaling.csv
//	go run ./cmd/plot scaling.csv -o scaling.png
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// record is one CSV row, by column name.
type record map[string]string

func (r record) num(col string) float64 {
	v, _ := strconv.ParseFloat(r[col], 64)
	return v
}

var order = []string{"colugo", "zmq4", "nats", "colugo-inproc"}

var colors = map[string]color.Color{
	"colugo":        color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"zmq4":          color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	"nats":          color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"colugo-inproc": color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff},
}

var glyphs = map[string]draw.GlyphDrawer{
	"colugo":        draw.CircleGlyph{},
	"zmq4":          draw.SquareGlyph{},
	"nats":          draw.TriangleGlyph{},
	"colugo-inproc": draw.CrossGlyph{},
}

func main() {
	out := flag.String("o", "scaling.png", "PNG file to write")
	title := flag.String("title", "", "a line above the panels (the machine, say)")
	width := flag.Float64("w", 12, "width in inches (height: 1.2 × width)")
	flag.Parse()
	// Flags may follow the CSV file: plot scaling.csv -o scaling.png.
	args := flag.Args()
	if len(args) > 1 {
		if err := flag.CommandLine.Parse(args[1:]); err != nil {
			fatal(err)
		}
		args = append(args[:1], flag.Args()...)
	}
	if len(args) != 1 {
		fatal(errors.New("usage: plot [-o scaling.png] [-title text] scaling.csv"))
	}
	recs, err := readCSV(args[0])
	if err != nil {
		fatal(err)
	}
	if err := render(recs, *out, *title, vg.Length(*width)*vg.Inch); err != nil {
		fatal(err)
	}
	fmt.Fprintln(os.Stderr, "plot: wrote", *out)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}

func readCSV(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("%s: no points", path)
	}
	var recs []record
	for _, row := range rows[1:] {
		r := record{}
		for i, col := range rows[0] {
			if i < len(row) {
				r[col] = row[i]
			}
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// series is one line: a system's points in one dimension.
type series struct {
	name   string
	system string
	dashed bool
	xy     plotter.XYs
}

// lines picks dimension dim's points, y from f, one series per system.
func lines(recs []record, dim, suffix string, dashed bool, f func(record) float64) []series {
	var ss []series
	for _, sys := range order {
		var xy plotter.XYs
		for _, r := range recs {
			if r["dimension"] == dim && r["system"] == sys {
				xy = append(xy, plotter.XY{X: r.num("x"), Y: f(r)})
			}
		}
		if len(xy) == 0 {
			continue
		}
		slices.SortFunc(xy, func(a, b plotter.XY) int { return int(a.X - b.X) })
		ss = append(ss, series{name: sys + suffix, system: sys, dashed: dashed, xy: xy})
	}
	return ss
}

type panel struct {
	title, xlabel, ylabel string
	xticks                []float64 // on a log scale, labelled by xlabelOf
	xlabelOf              func(float64) string
	logY                  bool
	series                []series
}

func render(recs []record, out, title string, w vg.Length) error {
	per := func(col string, scale float64) func(record) float64 {
		return func(r record) float64 { return r.num(col) / scale }
	}
	count := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	sizes := []float64{64, 1 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20}
	panels := []panel{
		{title: "Topics: 1 publisher → 1 subscriber, 1 KiB, round robin over topics",
			xlabel: "topics", ylabel: "k msgs/s", xticks: []float64{1, 10, 100}, xlabelOf: count,
			series: lines(recs, "topics", "", false, per("msgs_per_s", 1e3))},
		{title: "Subscribers: 1 publisher → N subscribers, 1 KiB",
			xlabel: "subscribers", ylabel: "k deliveries/s (all subscribers)", xticks: []float64{1, 4, 16}, xlabelOf: count,
			series: lines(recs, "subscribers", "", false, per("msgs_per_s", 1e3))},
		{title: "Repliers: 64 B requests, 16 in flight",
			xlabel: "repliers", ylabel: "k requests/s", xticks: []float64{1, 8, 32}, xlabelOf: count,
			series: lines(recs, "repliers-16inflight", "", false, per("msgs_per_s", 1e3))},
		{title: "Repliers: 64 B requests one at a time, round trip",
			xlabel: "repliers", ylabel: "µs (solid p50, dashed p99)", xticks: []float64{1, 8, 32}, xlabelOf: count, logY: true,
			series: append(lines(recs, "repliers-serial", " p50", false, per("p50_us", 1)),
				lines(recs, "repliers-serial", " p99", true, per("p99_us", 1))...)},
		{title: "Message size: 1 publisher → 1 subscriber, bandwidth",
			xlabel: "payload", ylabel: "MB/s", xticks: sizes, xlabelOf: sizeName, logY: true,
			series: lines(recs, "size", "", false, per("mb_per_s", 1))},
		{title: "Message size: 1 publisher → 1 subscriber, message rate",
			xlabel: "payload", ylabel: "msgs/s", xticks: sizes, xlabelOf: sizeName, logY: true,
			series: lines(recs, "size", "", false, per("msgs_per_s", 1))},
	}
	const cols = 2
	rows := (len(panels) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, pn := range panels {
		p, err := makePlot(pn)
		if err != nil {
			return err
		}
		plots[i/cols][i%cols] = p
	}
	h := w * 1.2
	img := vgimg.New(w, h)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	top := vg.Length(0)
	if title != "" {
		top = 0.35 * vg.Inch
		sty := draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 13), Handler: plot.DefaultTextHandler,
			XAlign: draw.XCenter, YAlign: draw.YTop}
		dc.FillText(sty, vg.Point{X: w / 2, Y: h - 0.08*vg.Inch}, title)
	}
	area := draw.Crop(dc, 0, 0, 0, -top)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Inch / 4, PadY: vg.Inch / 4,
		PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align(plots, tiles, area)
	for r := range plots {
		for c, p := range plots[r] {
			if p != nil {
				p.Draw(canvases[r][c])
			}
		}
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func makePlot(pn panel) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = pn.title
	p.Title.TextStyle.Font.Size = 11
	p.X.Label.Text = pn.xlabel
	p.Y.Label.Text = pn.ylabel
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, v := range pn.xticks {
		ticks = append(ticks, plot.Tick{Value: v, Label: pn.xlabelOf(v)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = pn.xticks[0]/1.25, pn.xticks[len(pn.xticks)-1]*1.25
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = !pn.logY // linear panels fall to the right; log panels' lines rise to the left
	p.Legend.TextStyle.Font.Size = 9
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range pn.series {
		pts := slices.Clone(s.xy)
		for _, xy := range pts {
			ymin, ymax = min(ymin, xy.Y), max(ymax, xy.Y)
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		l.Color, sc.Color = colors[s.system], colors[s.system]
		l.Width = vg.Points(1.5)
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		sc.Shape = glyphs[s.system]
		sc.Radius = vg.Points(3)
		p.Add(l, sc)
		p.Legend.Add(s.name, l, sc)
	}
	if math.IsInf(ymin, 0) {
		return p, nil
	}
	if pn.logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.TickerFunc(logTicks)
		p.Y.Min, p.Y.Max = ymin/2, ymax*3
	} else {
		p.Y.Tick.Marker = plot.TickerFunc(linearTicks)
		p.Y.Min, p.Y.Max = 0, ymax*1.3 // from zero, room for the legend
	}
	return p, nil
}

// linearTicks puts about five labelled ticks at multiples of 1, 2 or 5
// times a power of ten.
func linearTicks(lo, hi float64) []plot.Tick {
	if hi <= lo {
		return nil
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step/1e6; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		ticks = append(ticks, plot.Tick{Value: v + step/2}) // minor
	}
	return ticks
}

// logTicks labels the powers of ten (1k, 1M, …) with minor ticks between.
func logTicks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		dec := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * dec
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 {
				t.Label = siLabel(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

func siLabel(v float64) string {
	f := func(x float64, unit string) string { return strconv.FormatFloat(x, 'f', -1, 64) + unit }
	switch {
	case v >= 1e9:
		return f(v/1e9, "G")
	case v >= 1e6:
		return f(v/1e6, "M")
	case v >= 1e3:
		return f(v/1e3, "k")
	}
	return f(v, "")
}

func sizeName(v float64) string {
	n := int(v)
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
