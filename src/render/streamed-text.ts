/**
 * Text that is rendered when it is read, in chunks: a child fed with it (the restore of 5000
 * excludes, ~150 KB) parses the first lines while the rest are being made. Rendered once:
 * text() after chunks() has run returns what they gave. Pure until read.
 */
export class StreamedText {
  #text: string | undefined;
  #settle!: () => void;
  // Private, as #text: two texts made alike stay deep-equal.
  readonly #taken = new Promise<void>((resolve) => {
    this.#settle = resolve;
  });

  private constructor(
    // A renderer and its arguments, not a closure: two plans made alike compare equal (they are data).
    private readonly render: (...args: unknown[]) => Iterable<string>,
    private readonly args: readonly unknown[],
    /** Nothing to write: known without rendering. */
    readonly empty: boolean,
    /** About how long the text is, known without rendering: whether streaming it pays. */
    readonly estimatedLength: number,
  ) {}

  /** The text `render(...args)` gives, each chunk ending on a line boundary. */
  static rendered<A extends unknown[]>(
    render: (...args: A) => Iterable<string>,
    args: A,
    size: { readonly empty: boolean; readonly estimatedLength: number },
  ): StreamedText {
    return new StreamedText(render as unknown as (...args: unknown[]) => Iterable<string>, args, size.empty, size.estimatedLength);
  }

  static of(text: string): StreamedText {
    const streamed = StreamedText.rendered(whole, [text], { empty: text === '', estimatedLength: text.length });
    streamed.#text = text;
    streamed.#settle();
    return streamed;
  }

  /** The chunks, rendered as they are taken. */
  *chunks(): Generator<string> {
    try {
      if (this.#text !== undefined) {
        if (this.#text !== '') yield this.#text;
        return;
      }
      const parts: string[] = [];
      for (const chunk of this.render(...this.args)) {
        parts.push(chunk);
        yield chunk;
      }
      this.#text = parts.join('');
    } finally {
      this.#settle();
    }
  }

  /** Settles once the chunks have all been taken, or the taking stopped (the child quit reading). */
  get taken(): Promise<void> {
    return this.#taken;
  }

  text(): string {
    if (this.#text === undefined) for (const _ of this.chunks());
    return this.#text!;
  }
}

const whole = (text: string): string[] => [text];
