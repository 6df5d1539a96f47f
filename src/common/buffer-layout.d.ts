/**
 * Local type declaration for `buffer-layout` 1.2 (the package ships none and there is no
 * @types package): the part skiff uses, declarative layouts of fixed control-plane structures
 * (src/common/layout.ts).
 */
declare module "buffer-layout" {
  namespace BufferLayout {
    interface Layout<T = unknown> {
      /** Bytes the layout covers. */
      readonly span: number;
      readonly property?: string;
      decode(b: Buffer, offset?: number): T;
      /** Bytes written. */
      encode(src: T, b: Buffer, offset?: number): number;
    }
    function u8(property?: string): Layout<number>;
    function u16(property?: string): Layout<number>;
    function u32(property?: string): Layout<number>;
    function u16be(property?: string): Layout<number>;
    function u32be(property?: string): Layout<number>;
    function blob(length: number, property?: string): Layout<Buffer>;
    function struct<T>(fields: Array<Layout<unknown>>, property?: string): Layout<T>;
  }
  export = BufferLayout;
}
